"""Replay of recorded voyages: the embedded runner's pipeline over files, and the analyst's outputs.

Modules (see ``docs/replay.md``):

* :mod:`replay.driver`: :func:`~replay.driver.run_replay` and :func:`~replay.driver.write_report`;
* :mod:`replay.options`: ``geofence run``'s options shared by replay and learn;
* :mod:`replay.pacing`: ``--speed N``, pacing by event time;
* :mod:`replay.tap`: the engine and decoder wrappers that record what went through;
* :mod:`replay.progress`: the terminal progress bar;
* :mod:`replay.stats`, :mod:`replay.outputs`: ``summary.json``'s per-zone and per-subject figures;
* :mod:`replay.report`, :mod:`replay.plots`: the offline HTML report and the PNG plots;
* :mod:`replay.compare`, :mod:`replay.whatif`: what-if comparisons of two replays;
* :mod:`replay.learn`: learned dwell and speed baselines (``geofence learn``).

Nothing is imported here, so importing one module does not pull in matplotlib or asyncio.
"""
