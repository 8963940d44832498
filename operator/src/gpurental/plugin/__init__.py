"""`kubectl-gpurental`: the seeds' GPU-cloud consoles as a kubectl plugin.

Modules: :mod:`.cli` (the console script's entry point), :mod:`.parser` (the command line),
the commands (:mod:`.list_command`; :mod:`.lifecycle_commands`: pause, resume, stop, delete,
stop-all; :mod:`.billing_commands`: extend, autorenew, meter, summary;
:mod:`.access_commands`: ssh-keys, ssh, open), :mod:`.context` (what a command gets: arguments,
API, clock, terminal), :mod:`.api` (the only module that talks to the API server, with the
conflict retries), :mod:`.errors` (error lines) and the pure ones: :mod:`.rental` (reading a
GpuRental), :mod:`.meter` (live meter, summary KPIs, status filters, duration extension, SSH
key matching), :mod:`.render` (kubectl-like tables, money and rate text, errors) and
:mod:`.connect` (planning the ssh / port-forward invocations; ``run`` starts them). The plugin
writes only ``spec`` (what users may write) and never ``status``.
"""
