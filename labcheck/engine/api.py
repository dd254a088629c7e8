"""The engine's front door: inspect and copy by `transport:reference`, as skopeo's commands do."""

from __future__ import annotations

from typing import Protocol

from labcheck.engine.base.options import CopyOptions, SideOptions
from labcheck.engine.copy import CopyResult, ProgressCallback, copy_image
from labcheck.engine.inspect import ImageInspection, inspect_image
from labcheck.engine.reference.parse import parse_image_reference
from labcheck.engine.reference.refs import ImageReference
from labcheck.engine.transports import open_source


def _parsed(ref: str | ImageReference) -> ImageReference:
    return parse_image_reference(ref) if isinstance(ref, str) else ref


class EngineDriver(Protocol):
    """Who carries out inspect and copy: labcheck's own engine, or the real skopeo on a host."""

    name: str

    def inspect(self, ref: str, *, options: SideOptions | None = None, list_tags: bool = True) -> ImageInspection: ...

    def copy(self, src: str, dst: str, *, src_options: SideOptions | None = None,
             dst_options: SideOptions | None = None, options: CopyOptions | None = None) -> CopyResult: ...


def inspect(ref: str | ImageReference, options: SideOptions | None = None, *, list_tags: bool = True) -> ImageInspection:
    """What `skopeo inspect REF` reports."""
    parsed = _parsed(ref)
    options = options or SideOptions()
    source = open_source(parsed, options)
    try:
        named = parsed.docker_reference
        return inspect_image(source, options, list_tags=list_tags, name=named.name if named else "")
    finally:
        source.close()


def copy(src: str | ImageReference, dst: str | ImageReference, *, src_options: SideOptions | None = None,
         dst_options: SideOptions | None = None, options: CopyOptions | None = None,
         progress: ProgressCallback | None = None) -> CopyResult:
    """What `skopeo copy SRC DST` does."""
    return copy_image(_parsed(src), _parsed(dst), src_options=src_options, dst_options=dst_options,
                      options=options, progress=progress)


class NativeDriver:
    """The engine itself, acting on the machine labcheck runs on."""

    name = "native"

    def inspect(self, ref: str, *, options: SideOptions | None = None, list_tags: bool = True) -> ImageInspection:
        return inspect(ref, options, list_tags=list_tags)

    def copy(self, src: str, dst: str, *, src_options: SideOptions | None = None,
             dst_options: SideOptions | None = None, options: CopyOptions | None = None) -> CopyResult:
        return copy(src, dst, src_options=src_options, dst_options=dst_options, options=options)
