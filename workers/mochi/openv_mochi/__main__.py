"""`python -m openv_mochi`: the RunPod worker (the image's command)."""

from openv_mochi.entrypoints.runpod_worker import main

main()
