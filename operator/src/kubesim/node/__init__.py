"""Simulated GPU nodes: a kubelet and a kube-scheduler that talk to the API server over HTTP.

This module owns everything a real cluster's node side would do for the operator's pods:

* registers ``Node`` objects with GPU capacity and the GPU feature discovery labels;
* schedules pending pods onto those nodes (node selector / affinity, taints, resource fit) through
  the ``pods/binding`` subresource, or reports ``PodScheduled=False`` with kube-scheduler's message
  and a ``FailedScheduling`` Event;
* runs bound pods: waits for their PVCs, fails image pulls on request, marks them Running with the
  container start time, and terminates them when they get a ``deletionTimestamp``;
* evicts pods that do not tolerate a ``NoExecute`` taint put on a node (the taint-eviction
  controller's job, honouring ``tolerationSeconds``);
* runs a tiny PVC provisioner (:mod:`kubesim.provisioner`).

It never imports the API server: it reads a kubeconfig and uses HTTP, like the real components.

The scheduler places pods only on the nodes of its own simulator (run one simulator per cluster,
or give each its own ``namespace``); it follows ``kubectl cordon`` / ``taint`` / ``label`` on them.

Driving pods by hand: the simulator leaves alone every pod whose ``spec.schedulerName`` is not
``default-scheduler`` and every pod bound (``spec.nodeName``) to a node it does not simulate, so a
test can create such a pod and write its status itself (``PATCH .../pods/NAME/status``). A pod
bound by hand to a simulated node is run by its kubelet, or rejected (``Failed``,
``OutOf<resource>``) when the node is full, as a real kubelet does.

Command line (``python -m kubesim node``; ``--taint`` applies to the ``--node`` before it)::

    --kubeconfig PATH --node gpu-1=NVIDIA-A100-SXM4-80GB:8 --taint nvidia.com/gpu=present:NoSchedule
    --node mig-1=NVIDIA-A100-SXM4-80GB:7:nvidia.com/mig-1g.10gb [--start-delay 2]
    [--pull-fail-images REGEX] [--fail-storage-class NAME] [--namespace NS] [--keep-nodes]
    [--warning-events-only]   (thousands of pods: skip routine Normal Events)

Library use::

    async with SimulatedNodes(kubeconfig, nodes=["gpu-1=NVIDIA-A100:8"]):
        ...

or, from synchronous code, ``with SimulatedNodesThread(kubeconfig, nodes=[...]): ...``.

The package's modules, each owning one part:

objects.py       the JSON object type, constants, rfc3339, object keys and paths
quantities.py    resource quantities and a pod's effective requests
specs.py         NodeSpec and Taint: what a simulated node is made of
kubeconfig.py    reading a kubeconfig (server, TLS, credentials)
client.py        KubeClient (requests with retries, watch streams) and ApiError
informer.py      list + watch into a cache, surviving disconnects and 410 Gone
background.py    fire-and-forget work with bounded concurrency
events.py        EventRecorder: core/v1 Events as kubelet and kube-scheduler write them
state.py         Usage and NodeState: what is placed where
filters.py       kube-scheduler's default filters, its FitError message, taint eviction
scheduling.py    the Scheduler
images.py        image reference rules (parse errors, containerd's full names)
admission.py     the kubelet's own resource check
volumes.py       the PVCs that keep a pod from starting
podstatus.py     the pod statuses the kubelet writes
kubelet.py       the Kubelet
registration.py  the Node objects and their heartbeat Leases
nodes.py         SimulatedNodes and SimulatedNodesThread: everything wired together
cli.py           ``python -m kubesim node`` (also ``python -m kubesim.node``)
"""

from .cli import build_parser, main
from .client import ApiError, KubeClient
from .filters import FilterResult, matches_node_selector, unschedulable_message, untolerated_taint
from .images import IMAGE_REFERENCE, full_image_ref
from .informer import Informer
from .kubeconfig import ClusterConfig, load_kubeconfig
from .nodes import SimulatedNodes, SimulatedNodesThread
from .quantities import parse_quantity, pod_requests
from .specs import NodeSpec, Taint

__all__ = [
    "IMAGE_REFERENCE",
    "ApiError",
    "ClusterConfig",
    "FilterResult",
    "Informer",
    "KubeClient",
    "NodeSpec",
    "SimulatedNodes",
    "SimulatedNodesThread",
    "Taint",
    "build_parser",
    "full_image_ref",
    "load_kubeconfig",
    "main",
    "matches_node_selector",
    "parse_quantity",
    "pod_requests",
    "unschedulable_message",
    "untolerated_taint",
]
