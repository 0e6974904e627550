"""The one training loop and what it needs: checkpoints, EMA, stats."""
