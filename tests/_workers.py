"""Functions run in child processes by the multi-process tests (spawned, so importable)."""

from __future__ import annotations

from ada_governance import Governance, TriggerEvent, Workflow, current_run, governed_workflow

WORKFLOW = Workflow(name="multi", trigger={"event": "job"})


def governed_calls(url: str, worker: int, calls: int) -> int:
    """Make ``calls`` governed calls against the store at ``url``; return how many ran."""
    governance = Governance(url, development=True)

    @governed_workflow(WORKFLOW, governance=governance)
    def work(event: TriggerEvent, index: int) -> int:
        run = current_run()
        run.record_model_call("m", "p", input_tokens=index, output_tokens=1, cost=0.001)
        run.record_outcome(ref=f"w{worker}-{index}", done=1)
        return index

    done = sum(
        1
        for index in range(calls)
        if work(TriggerEvent.now("job", f"w{worker}-{index}"), index) >= 0
    )
    governance.store.close()
    return done


def call_once(url: str) -> str:
    """Make one governed call; return 'ran' or the name of the error that refused it."""
    governance = Governance(url, development=True)

    @governed_workflow(WORKFLOW, governance=governance)
    def work() -> str:
        return "ran"

    try:
        return work()
    except Exception as error:
        return type(error).__name__
    finally:
        governance.store.close()
