"""Dead-letter redrive: ``ecom-redrive`` reads the dead-letter subscription, lists what waits
there by reason, source subscription and age, and republishes the selected messages to the
topic each came from, body and original attributes byte for byte, acking each dead letter only
after its republish succeeded.

- :mod:`ecom_redrive.letters`: what a dead letter says (reason, source, age) and the message it
  restores;
- :mod:`ecom_redrive.selection`: which dead letters a run takes, and the counts it reports;
- :mod:`ecom_redrive.topics`: the topic a source subscription reads;
- :mod:`ecom_redrive.redrive`: the run itself; :mod:`ecom_redrive.cli`: the command.
"""
