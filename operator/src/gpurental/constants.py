"""The names this operator shares with the cluster: API group, kinds, labels, finalizers.

Pure and dependency-free, so every layer (models, views, builders, the plugin, the handlers)
reaches the one spelling without importing anything else. A rename here is a breaking change
for running clusters: these strings live on in objects already stored in etcd.
"""

from __future__ import annotations

GROUP = "gpurental.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Plurals of the operator's own kinds, as the API paths and kopf's resource selectors name them.
RENTALS = "gpurentals"
OFFERS = "gpuoffers"
WALLETS = "wallets"

# Children carry these labels; the operator watches only what it labels as managed.
MANAGED_BY = "gpu-rental-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_RENTAL = f"{GROUP}/rental"
LABEL_RENTAL_UID = f"{GROUP}/rental-uid"
LABEL_OFFER = f"{GROUP}/offer"
# The node label the NVIDIA GPU feature discovery sets; an offer's gpu.product selects on it.
NODE_PRODUCT_LABEL = "nvidia.com/gpu.product"

# Held on a rental until its final charge is settled into its wallet.
FINALIZER = f"{GROUP}/settlement"
# A digest of the rental's SSH keys on its pod: a changed key set recreates the pod.
ANNOTATION_KEYS_DIGEST = f"{GROUP}/ssh-keys-digest"

# The rental's own container in its pod (beside the optional sshd sidecar).
WORKLOAD_CONTAINER = "workload"
