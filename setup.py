"""The build step setup.cfg cannot say: the shipped data goes into the package.

The repository keeps the bundled prior, the LPIPS backbone, the example image, the photo
manifests and the measured configs in its top-level data/ and configs/ folders (their one
source). A wheel (and `pip install .`) copies exactly the files in SHIPPED into the package as
restore/_shipped/data/... and restore/_shipped/configs/..., where restore.paths looks first; an
editable install copies nothing and reads the source tree."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {  # folder -> patterns of the files that ship (studies' results and figures stay out)
    "data": ["models/natural-ddpm/*", "weights/*", "examples/*", "*.csv", "published/*"],
    "configs": ["*.yaml", "README.md", "protocols/*.yaml", "notes/*.yaml"],
}


def shipped_files() -> list[Path]:
    files = sorted({p for folder, patterns in SHIPPED.items() for pattern in patterns
                    for p in (ROOT / folder).glob(pattern) if p.is_file()})
    if not any(p.name == "diffusion_pytorch_model.safetensors" for p in files):
        raise SystemExit(f"error: the bundled prior is missing from {ROOT / 'data' / 'models'}; build from a full clone")
    return files


class BuildWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "restore" / "_shipped"
        for source in shipped_files():
            self.mkpath(str((target / source.relative_to(ROOT)).parent))
            self.copy_file(str(source), str(target / source.relative_to(ROOT)), preserve_mode=False)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        target = Path(self.build_lib) / "restore" / "_shipped"
        return outputs + [str(target / p.relative_to(ROOT)) for p in shipped_files()]


setup(cmdclass={"build_py": BuildWithData})
