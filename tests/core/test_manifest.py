"""The manifest's float stack and codec versions: what decides a run's floats and bytes."""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import PIL
import pytest
import torch
from medsynbench import manifest
from medsynbench.manifest import (
    codec_versions,
    collect_manifest,
    cpu_info,
    float_stack,
    float_stack_id,
)

X86 = """\
processor	: 0
vendor_id	: GenuineIntel
cpu family	: 6
model		: 143
model name	: Intel(R) Xeon(R) Platinum 8480+
stepping	: 8
flags		: fpu sse4_2 fma avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile hypervisor

processor	: 1
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu sse4_2 fma avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile hypervisor
"""

ARM = """\
processor	: 0
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp sve bf16 i8mm
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x1
CPU part	: 0xd40
CPU revision	: 1
"""


def test_x86_cpu_model_vendor_and_kernel_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    info = cpu_info(X86)
    assert info == {
        "model": "Intel(R) Xeon(R) Platinum 8480+", "vendor": "GenuineIntel", "family": "6",
        "model_id": "143", "stepping": "8", "machine": "x86_64",
        # only flags that select float kernels; "fpu", "hypervisor" are dropped
        "flags": ["amx_bf16", "amx_tile", "avx", "avx2", "avx512_bf16", "avx512f", "fma",
                  "sse4_2"],
        "neon": False,
    }


def test_arm_cpu_reads_features_and_has_neon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(platform, "processor", lambda: "")
    info = cpu_info(ARM)
    assert info["neon"] is True and info["machine"] == "aarch64"
    assert info["flags"] == ["asimd", "asimdhp", "bf16", "i8mm", "sve"]
    assert (info["vendor"], info["family"], info["model_id"], info["stepping"]) == (
        "0x41", "8", "0xd40", "1")
    assert info["model"] is None  # no "model name" line and no platform.processor()


def test_cpu_info_reads_the_cpuinfo_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text(X86)
    monkeypatch.setattr(manifest, "CPUINFO", fake)
    assert cpu_info()["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert float_stack("cpu")["cpu"]["flags"][0] == "amx_bf16"


def test_missing_cpuinfo_gives_none_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifest, "CPUINFO", tmp_path / "absent")
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    info = cpu_info()
    assert info["model"] is None and info["flags"] is None and info["vendor"] is None


def test_float_stack_id_tells_cpu_types_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "cpuinfo"
    monkeypatch.setattr(manifest, "CPUINFO", fake)
    fake.write_text(X86)
    first, again = float_stack("cpu"), float_stack("cpu")
    assert float_stack_id(first) == float_stack_id(again)
    assert len(float_stack_id(first)) == 12
    fake.write_text(X86.replace("avx512f avx512_bf16 amx_bf16 amx_tile ", ""))
    assert float_stack_id(float_stack("cpu")) != float_stack_id(first)


def test_float_stack_records_libraries_and_blas() -> None:
    stack = float_stack("cpu")
    assert stack["device"] == "cpu" and stack["gpu"] is None
    assert stack["torch"] == torch.__version__ and stack["numpy"] == np.__version__
    assert stack["scipy"]
    assert set(stack["blas"]) == {"numpy", "scipy", "torch", "runtime"}
    assert stack["blas"]["numpy"]["blas"]["name"]  # numpy ≥ 1.25 reports its BLAS
    assert {"mkl", "onednn", "blas_info", "mkldnn_available", "cpu_capability"} <= set(
        stack["blas"]["torch"])


def test_torch_config_lines_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        "PyTorch built with:\n"
        "  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605\n"
        "  - Intel(R) MKL-DNN v3.5.3 (Git Hash abc)\n"
        "  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, LAPACK_INFO=mkl, USE_MKL=ON\n"
    )
    monkeypatch.setattr(torch.__config__, "show", lambda: text)
    found = float_stack("cpu")["blas"]["torch"]
    assert (found["mkl"], found["onednn"], found["openblas"]) == ("2024.2", "3.5.3", None)
    assert (found["blas_info"], found["lapack_info"]) == ("mkl", "mkl")


def test_every_probe_failing_still_gives_a_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("probe failed")

    from PIL import features

    monkeypatch.setattr(manifest, "CPUINFO", tmp_path / "absent")
    monkeypatch.setattr(platform, "libc_ver", boom)
    monkeypatch.setattr(np, "show_config", boom)
    monkeypatch.setattr(torch.__config__, "show", boom)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", boom)
    monkeypatch.setattr(features, "version", boom)
    monkeypatch.setattr(manifest, "_runtime_blas", boom)
    out = collect_manifest("cpu", "h" * 64, {"copy-real": "0.1.0"})
    stack = out["float_stack"]
    assert stack["libc"] is None and stack["blas"]["numpy"] is None
    assert stack["blas"]["runtime"] is None
    torch_blas = stack["blas"]["torch"]
    assert torch_blas["mkl"] is None and torch_blas["mkldnn_available"] is None
    assert out["codecs"]["libjpeg"] is None and out["codecs"]["pillow"] == PIL.__version__
    assert out["float_stack_id"] == float_stack_id(stack)
    assert out["suite_hash"] == "h" * 64 and out["plugins"] == {"copy-real": "0.1.0"}


def test_codec_versions_name_pillow_libjpeg_and_zlib() -> None:
    from PIL import features

    codecs = codec_versions()
    assert codecs["pillow"] == PIL.__version__
    assert codecs["libjpeg"] == features.version("jpg")
    assert codecs["zlib"] == features.version("zlib")
    assert set(codecs) == {"pillow", "libjpeg", "libjpeg_turbo", "zlib", "zlib_ng"}
