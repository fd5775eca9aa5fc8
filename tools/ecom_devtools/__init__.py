"""Developer tools for the e-commerce pipeline, apart from the product: :mod:`ecom_devtools.local`
runs the real infrastructure as local processes (``ecom-infra``), :mod:`ecom_devtools.docker`
sets up Docker for the Compose tests (``ecom-docker``), :mod:`ecom_devtools.bench` is the
benchmark (``ecom-bench``) and :mod:`ecom_devtools.demo` the quick-start demo (``ecom-demo``).
"""
