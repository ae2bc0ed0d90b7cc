"""``make test-distributed``: the CeleryExecutor deployment as processes (:mod:`.topology`), its REST checks
(:mod:`.check_run`) and the driver that ties them together (:mod:`.driver`)."""
