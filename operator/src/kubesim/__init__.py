"""kubesim: a local Kubernetes API emulator and simulated GPU node, for tests and the demo.

The API server (`python -m kubesim serve`, or `kubesim.launch.start_emulator`) behaves like
kube-apiserver wherever kopf, the `kubernetes` client and kubectl can tell. Its modules:

server.py       the aiohttp front: identity, hooks, faults, record, routing, answers
routing.py      URL -> RequestInfo (verb, group, version, resource, namespace, name, subresource)
api.py          the REST verbs on resources (get/list/create/update/patch/delete/...)
watchstream.py  one watch request: initial state or replay, bookmarks, 410, timeouts
watch.py        per-collection event history (bounded ring) and per-watcher queues
store.py        objects, the global resourceVersion, and the order every write takes
checks.py       a write's built-in checks: kind, namespace/CRD lifecycle, Priority, validation
writes.py       server-set metadata on create, update merging, generation
deletion.py     preconditions, propagation, finalizers, grace periods
ownership.py    the ownerReference index (garbage collection, foreground deletion)
encoding.py     JSON bytes and timestamps
controllers.py  garbage collector, namespace and CRD cleanup, pod grace-period expiry
kinds.py        built-in kinds' create defaults, immutable fields, CRD status
objectmeta.py   name and label validation
schema.py       CRD structural schemas: defaulting, pruning, validation (kube wording)
patch.py        JSON merge patch, JSON patch, strategic merge patch
selectors.py    label and field selectors
resources.py    the resource types served (built-ins + every CRD's versions)
discovery.py    /version, /api, /apis and resource lists
openapi.py      /openapi/v3 (what kubectl needs for server-side field validation)
tables.py       Table responses; printers.py holds the built-in kinds' columns
scale.py        the scale subresource; logs.py pods/log
protobuf.py     decoding the protobuf bodies kubectl's typed clients send
hooks.py        identity, request hooks (RBAC later) and admission hooks (webhooks later)
faults.py       fault injection and the request record; admin.py serves /_kubesim/
tls.py          optional HTTPS; kubeconfig.py writes the kubeconfig; launch.py spawns it
bench.py        `python -m kubesim.bench`
node/           the simulated GPU nodes (kubelet + scheduler; provisioner.py for PVCs), a client

Never imported by the operator (`gpurental`).
"""
