"""Blinded reading: whose saves a request may see.

In a reader study, or when two radiologists read each case independently, each
reader must not see another's outline, label or note before committing their
own: an outline seen is an outline copied. With ``SONOTRACE_BLINDED_READING``
on, the client (behind a sign-in proxy, ``SONOTRACE_ANNOTATOR_HEADER``) shows
each signed-in reader only the saves that name them as the annotator: on the
Saved page and its CSV, in ``/api/saved`` and a version's DICOM SEG and SR
(``/api/saved/<sha256>/<version>/dicom-seg``, ``.../dicom-sr``), in the worklist's
status, in the Annotate page's "saved before" notice and *Load it to revise*, and for
the kept copies of uploads. The users named in ``SONOTRACE_REVIEWERS`` (a study's coordinator,
say) see every save.

Version numbers stay per image, so a reader can tell that an image has saves
other than their own, but not whose they are or what they say.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import _signin
from ._config import ClientConfig

#: What the pages and the API say when blinded reading hides other readers' saves.
BLINDED_NOTE = "Blinded reading: you see only the annotations you saved."


def visible_annotator(config: ClientConfig, headers: Mapping[str, str]) -> str | None:
    """The annotator whose saves this request may see, or None for every annotator.

    Parameters
    ----------
    config : ClientConfig
        The client's settings.
    headers : mapping
        The request's headers (``flask.request.headers``).

    Returns
    -------
    str or None
        The signed-in reader's name with blinded reading on, unless they are a
        reviewer; None (every save) otherwise.

    Raises
    ------
    annotation_client._signin.SignInError
        With blinded reading on, when the sign-in proxy named no user the
        client can accept: the request then sees nothing.
    """
    if not config.blinded_reading:
        return None
    name = _signin.signed_in_name(headers, config.annotator_header)
    return None if name in config.reviewers else name
