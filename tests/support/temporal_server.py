"""The dev server's settings for the tests' own Temporal servers."""

from __future__ import annotations

# The timer queue puts a floor of now + history.timerProcessorMaxTimeShift (1 s by default)
# on a new timer's fire time: a timer shorter than that fires up to a second late, and the
# tests' short clocks (reconciliation after 3 s, the money model's waits) spent much of the
# workflow tests' time so. At 10 ms a short timer fires about when it is due. No timer fires
# earlier than it is due either way. Only the tests' servers: the local stack, benchmark and
# chaos servers keep the default, as a production cluster does (the service never relies on
# a short timer firing on time: docs/architecture.md, "Writes a lost workflow task made").
TEST_SERVER = {"history.timerProcessorMaxTimeShift": '"10ms"'}
