"""High availability on etcd: replicas register themselves and the agent sessions they hold under
a lease (:mod:`lease`, :mod:`directory`), requests for a cluster whose tunnel another replica
holds go one hop to it over a pooled mutual-TLS peer tunnel (:mod:`peer`, :mod:`forward`), and
each cluster is driven by exactly one replica, its owner (:mod:`ownership`). On the embedded
SQLite store there is one replica and none of this runs."""
