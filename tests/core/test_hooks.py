"""Lifecycle hooks: a plugin module observes run_started, stage_finished and run_finished."""

from __future__ import annotations

from types import SimpleNamespace

from medsynbench import hookimpl
from medsynbench.runner import Runner
from medsynbench.suite import load_suite


def test_lifecycle_hooks_fire(registry, toy_suite):
    events: list[tuple] = []

    observer = SimpleNamespace(
        __name__="observer",
        run_started=hookimpl(lambda suite, manifest: events.append(("start", suite.name))),
        stage_finished=hookimpl(
            lambda stage, entry, key, seconds, cached: events.append(
                ("stage", stage, entry, cached))
        ),
        run_finished=hookimpl(
            lambda results, out_dir: events.append(("end", len(results["entries"])))),
    )
    registry.add_module(observer, "observer-dist")
    suite = load_suite(toy_suite, registry)
    Runner(suite, registry, suite.output_dir, device="cpu").run()
    assert events[0] == ("start", "toy") and events[-1] == ("end", 2)
    stages = {e[1] for e in events if e[0] == "stage"}
    assert stages == {"prepare", "fit", "sample", "encode", "metrics", "tasks"}
    assert ("stage", "fit", "alpha", False) in events


def test_register_commands_adds_cli_subcommand(registry, capsys):
    import argparse

    def register_commands(subparsers):
        hello = subparsers.add_parser("hello")
        hello.set_defaults(func=lambda args: print("hi") or 0)

    module = SimpleNamespace(__name__="cmds", register_commands=hookimpl(register_commands))
    registry.add_module(module, "d")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    registry.hook.register_commands(subparsers=sub)
    args = parser.parse_args(["hello"])
    assert args.func(args) == 0 and capsys.readouterr().out == "hi\n"
