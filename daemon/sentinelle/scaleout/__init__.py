"""Scale-out over Kafka: collectors (sources → the samples topic) and detector workers (a consumer group).

``codec.py`` packs samples, ``state.py`` an asset's snapshot, ``collector.py`` and ``worker.py``
are the two modes besides the all-in-one daemon (``daemon.mode``); ``topics.py`` creates the topics.
"""
