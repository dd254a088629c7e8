"""Build-time include: the course's scenarios and pages ship inside the wheel as labcheck/shipped/.

They stay where they are edited (scenarios/, course/); the wheel gets a copy under
labcheck/shipped/, where `labcheck.scenario.catalog` finds them after `pip install`.
Everything else is declared in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# Folder in the source tree -> the files of it that ship (a folder that does not exist ships nothing).
SHIPPED = {"scenarios": "*.yaml", "course": "*.md"}


class BuildPyWithCourse(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads them from the source tree
            return
        for folder, pattern in SHIPPED.items():
            for source in sorted(Path(folder).glob(pattern)):
                target = Path(self.build_lib) / "labcheck" / "shipped" / folder / source.name
                self.mkpath(str(target.parent))
                self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildPyWithCourse})
