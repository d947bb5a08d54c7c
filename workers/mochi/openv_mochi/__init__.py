"""OpenV's GPU worker: a RunPod Serverless handler that renders Mochi-1 videos."""
