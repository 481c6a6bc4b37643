"""Stand-in ProgressBar that records every update."""

updates = []


class ProgressBar:
    def __init__(self, total):
        self.total = total

    def update_absolute(self, value, total=None, preview=None):
        updates.append((value, total))
