"""Safe extraction of a repository tarball: hostile members are refused and reported.

GitHub's tarballs hold one top-level folder (`owner-repo-sha/`) that is stripped. Each member
passes the standard library's `data` filter (no absolute paths, no `..`, no links leaving the
destination, no device files) and the size and count caps; refused members are listed with the
reason, never followed.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from checks.errors import UnsafeInputError


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Caps that keep a hostile archive from filling the disk."""

    max_members: int = 20_000
    """Most entries an archive may hold."""
    max_file_bytes: int = 20 * 1024 * 1024
    """Largest single file extracted; larger ones are refused."""
    max_total_bytes: int = 300 * 1024 * 1024
    """Most bytes extracted in all; beyond it the whole archive is refused."""


@dataclass(frozen=True, slots=True)
class RefusedMember:
    """An archive entry that was not extracted."""

    path: str
    """Its path inside the repository (top-level folder stripped)."""
    reason: str
    """Why it was refused, in words."""


@dataclass(frozen=True, slots=True)
class Extraction:
    """What an extraction produced."""

    root: Path
    """Folder holding the repository's files."""
    files: int
    """Regular files extracted."""
    total_bytes: int
    """Their size in all."""
    refused: tuple[RefusedMember, ...] = field(default=())
    """Entries refused, with reasons."""


def _strip_top(name: str) -> str:
    parts = PurePosixPath(name).parts
    return "/".join(parts[1:]) if len(parts) > 1 else ""


def _refusal(member: tarfile.TarInfo, destination: Path, limits: ArchiveLimits) -> str:
    """Why `member` must not be extracted, or "" when it is safe."""
    if member.isfile() and member.size > limits.max_file_bytes:
        return f"file of {member.size} bytes is over the {limits.max_file_bytes}-byte cap"
    try:
        tarfile.data_filter(member, str(destination))
    except tarfile.AbsolutePathError:
        return "absolute path"
    except tarfile.OutsideDestinationError:
        return "path leaves the repository (..)"
    except tarfile.AbsoluteLinkError:
        return f"link to an absolute path ({member.linkname})"
    except tarfile.LinkOutsideDestinationError:
        return f"link leaving the repository ({member.linkname})"
    except tarfile.SpecialFileError:
        return "device or other special file"
    except tarfile.FilterError as exc:
        return f"refused by the archive filter: {exc}"
    return ""


def _raw_refusal(raw_name: str) -> str:
    # The top-level folder is stripped before filtering, so judge the raw name too:
    # `/etc/x` or `../x` at the top must not become an innocent-looking relative path.
    path = PurePosixPath(raw_name)
    if path.is_absolute():
        return "absolute path"
    if ".." in path.parts:
        return "path leaves the repository (..)"
    return ""


def extract_tarball(
    archive: Path, destination: Path, limits: ArchiveLimits | None = None
) -> Extraction:
    """Extract a GitHub repository tarball into `destination` (created), safely."""
    limits = limits or ArchiveLimits()
    destination.mkdir(parents=True, exist_ok=True)
    refused: list[RefusedMember] = []
    files = total = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for count, member in enumerate(tar, start=1):
                if count > limits.max_members:
                    raise UnsafeInputError(
                        f"archive has more than {limits.max_members} entries; refused whole"
                    )
                inner = _strip_top(member.name)
                if not inner:
                    continue
                reason = _raw_refusal(member.name) or _refusal(
                    member.replace(name=inner, deep=False), destination, limits
                )
                if reason:
                    refused.append(RefusedMember(inner, reason))
                    continue
                if member.isfile():
                    total += member.size
                    if total > limits.max_total_bytes:
                        raise UnsafeInputError(
                            f"archive expands past {limits.max_total_bytes} bytes; refused whole"
                        )
                    files += 1
                if member.islnk():
                    inner_link = _strip_top(member.linkname)
                    member = member.replace(linkname=inner_link, deep=False)
                tar.extract(member.replace(name=inner, deep=False), destination, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UnsafeInputError(f"cannot read the repository archive: {exc}") from exc
    return Extraction(destination, files, total, tuple(refused))
