"""A real Kubernetes control plane for tests, demo and bench, built from the Kubernetes Go modules.

- `binary`: builds the `testbed/` multi-call binary (kube-apiserver, kube-controller-manager,
  kube-scheduler, etcd) once per go.sum and caches it outside the work tree;
- `pki`: the CA, serving and client certificates and service-account keys it runs with;
- `controlplane`: starts etcd, the API server, the controller manager and the scheduler, waits
  until they serve, mints identities (client certificates, ServiceAccount tokens), stops them;
- `__main__`: `python -m gpurental_dev.k8s {build,serve}`, shaped like `python -m kubesim`.
"""
