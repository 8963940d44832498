"""`kubectl-gpurental`: the seeds' GPU-cloud consoles as a kubectl plugin.

Modules: :mod:`.meter` (pure: live meter, summary KPIs, status filters, duration extension,
SSH key matching), :mod:`.render` (pure: kubectl-like tables, money and rate text, errors) and
:mod:`.cli` (argparse entry point; the only module that talks to the API server). The plugin
writes only ``spec`` (what users may write) and never ``status``.
"""
