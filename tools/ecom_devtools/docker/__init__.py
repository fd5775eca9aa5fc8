"""Docker for the Compose tests: ``ecom-docker`` sets up the engine and the Compose v2 plugin
where they are missing, and the official images or, where no registry answers, stand-ins
built locally (a Debian root file system made from Debian's own packages).
"""
