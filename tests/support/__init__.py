"""What several test modules share: the repository root, the Airflow harness, notification receivers and
registry candidates (folders of small files that stand in for trained versions)."""

import types
from collections import defaultdict
from pathlib import Path

#: The checkout under test.
REPO = Path(__file__).resolve().parents[2]


class FakeEvents(defaultdict):
    """Stands in for a task context's ``outlet_events``: ``events[asset].extra`` can be set and read back."""

    def __init__(self):
        super().__init__(lambda: types.SimpleNamespace(extra=None))
