"""The speed-to-lead example: the seed's lead follow-up workflow, declared and checked.

Run it from anywhere: ``python examples/speed_to_lead/main.py``.
"""

from __future__ import annotations

from pathlib import Path

from workflow import SPEED_TO_LEAD

from ada_governance import Workflow, load_workflows, readiness

HERE = Path(__file__).parent


def main() -> None:
    """Load the declarations, show the Python and YAML forms agree, and check readiness."""
    from_yaml = Workflow.from_file(HERE / "speed_to_lead.yaml")
    print(f"Python and YAML declarations are equal: {from_yaml == SPEED_TO_LEAD}")

    for workflow in load_workflows(HERE).values():
        result = readiness(workflow)
        print(f"\n{workflow.name} {workflow.version}: {result.verdict.value}")
        for element, named in result.elements.items():
            print(f"  {'yes' if named else ' - '}  {element.label}")
        if result.blocking:
            missing = ", ".join(element.label for element in result.blocking)
            print(f"  still adoption mode: name its {missing}")


if __name__ == "__main__":
    main()
