"""gpu-rental-operator: GPU rentals as Kubernetes pods, metered to the second."""
