"""Distributed mode: collection workers per zone on Celery, with Redis as broker and result store.

Why: an estate spans zones no single box reaches (internal, DMZ, a branch, an outside vantage). The controller
(``scan``/``run --broker``) validates the inventory and its scope, sends one task per host and per network family
to the queue of its zone (``ea.zone.<zone>``), verifies each worker's signed result, judges and signs the bundle
once. Workers (``evidence-agent worker --zone``) run the very probes of a single-process run and never hold the
bundle's signing key. Modules: ``broker`` (the Celery app and connection), ``payload`` (what a task carries),
``envelope`` (a worker's signed result), ``worker`` (the task body), ``controller`` (dispatch, stream, deadlines).
"""
