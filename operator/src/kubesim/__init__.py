"""kubesim: a local Kubernetes API emulator and simulated GPU node, for tests and the demo."""
