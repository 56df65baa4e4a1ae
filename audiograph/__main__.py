"""``python -m audiograph …`` (and ``torchrun -m audiograph …``) is the ``audiograph`` CLI."""

from audiograph.pipeline.cli import main

if __name__ == "__main__":
    main()
