"""The store analysis: figures and charts read back from the joined orders table and the DLQ.

:mod:`~ecom_report.columns` names what the engines read, :mod:`~ecom_report.figures` defines
every figure once, as SQL that both engines run (:mod:`~ecom_report.embedded`, DuckDB in
process, the default; :mod:`~ecom_report.spark`, Spark through the Spark Cassandra Connector),
and :mod:`~ecom_report.page` draws them.
"""
