"""Fakes shared by the test suites: one place for each thing a test stands in for.

* ``clock``: :class:`~tests.fakes.clock.FakeClock` (the services' wall clock, aware UTC datetimes)
  and :class:`~tests.fakes.clock.FakeMonotonic` (a monotonic timer with ``sleep``, for limiters).
* ``recording``: :class:`~tests.fakes.recording.Recorder`, what fake servicers received (request
  and metadata) and what they are told to do instead of answering.
* ``broker``: :class:`~tests.fakes.broker.FakeBrokerService`, the broker's gRPC API over a tiny
  venue (accounts, markets, orders, fills history); :class:`~tests.fakes.broker.FakeBrokerPort`,
  the sync service's in-process broker port, and
  :class:`~tests.fakes.broker.BrokerPortServicer`, that port served over gRPC.
* ``sync``: :class:`~tests.fakes.sync.FakeSyncService`, the sync service's gRPC API over a signal
  log (sources, streams with subscribe / resume / acks, paged listing, publishing).
* ``configs``: :func:`~tests.fakes.configs.copy_config`, an engine copy configuration with the
  fields a test does not care about at neutral values.
"""
