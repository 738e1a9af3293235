"""A load tool that speaks only the standard Matrix client-server API.

It can be pointed at any homeserver (Parley or Synapse) and runs bounded
phases: the request-rate ceiling of a trivial endpoint, registration and
login, room creation and joins, sending at a fixed concurrency with
end-to-end delivery through long-poll ``/sync``, initial sync, ``/messages``
pagination and many idle long-polls (server memory).  ``python -m bench.load
--help`` lists the options; ``docs/BENCHMARKS.md`` explains the figures.
"""
