"""Tools for the deployment files: kustomize and KEDA's CRDs, both fetched with the Go toolchain
from the Go module proxy and cached under ``ECOM_CACHE_DIR``, so the Kubernetes manifests can
be rendered and checked on a machine with no cluster.
"""
