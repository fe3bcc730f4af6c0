"""Collect-expect mode of the OpInfo suite: the controlling process merges what the workers recorded."""

from tests.lowering import _opinfo_collect as collect


def pytest_configure(config):
    if collect.collecting() and not hasattr(config, "workerinput"):
        collect.reset()


def pytest_sessionfinish(session, exitstatus):
    if not collect.collecting() or hasattr(session.config, "workerinput"):
        return
    if not collect.read_outcomes():
        return
    from tests.lowering._opinfo import all_expect_keys

    summary = collect.finish(all_expect_keys())
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(summary)
