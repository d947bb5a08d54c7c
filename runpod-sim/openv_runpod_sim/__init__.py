"""RunPod Serverless simulator: RunPod's HTTP contract for end-to-end tests and the local stack."""
