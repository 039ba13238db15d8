"""Component ids of the annotation client, in one place.

Browser tests and the page modules both import these names, so renaming a
component here cannot silently break a test selector. The values marked
*stable* are part of the client's public contract (issue #6): automated browser
tests drive the page by them.
"""

# --- stable ids (public contract)
IMAGE_UPLOAD = "image-upload"
ANNOTATION_GRAPH = "annotation-graph"
SEGMENT_BUTTON = "segment-button"
CLASSIFY_BUTTON = "classify-button"
SAVE_BUTTON = "save-button"
FINAL_LABEL = "final-label"
UNDO_BUTTON = "undo-button"
REDO_BUTTON = "redo-button"
VERTEX_DENSITY = "vertex-density"
VERTEX_DENSITY_VALUE = "vertex-density-value"  # the number in the slider's label

# --- app shell
NAVBAR = "navbar"
ANNOTATOR_STORE = "annotator-store"
SERVER_STATUS = "server-status"
SERVER_STATUS_SAID = "server-status-said"  # a change of the badge, read out
# Hidden; class "dirty" while the annotate page's work is in no save. In the shell, so
# that sonotrace.js still knows it on another page, where a reload would lose the work.
UNSAVED_FLAG = "unsaved-flag"
# The signed-in name the annotate page's work was done under (memory: this document
# only). In the shell, so that a sign-in changed while another page was shown is still
# seen when the annotate page is drawn again with the shell's work.
SIGNED_IN_AS = "signed-in-as"

# --- annotate page: stores
IMAGE_META = "image-meta"
IMAGE_DATA = "image-data"
HISTORY = "outline-history"
AI_RESULT = "ai-result"
BOX_REQUEST = "box-request"
BOX_DRAWN = "box-drawn"
BOX_RESULT = "box-result"
BOX_PENDING = "box-pending"
CLASSIFICATION = "classification"
CLASSIFY_PENDING = "classify-pending"
PAGE_LOAD = "annotate-page-load"
# The Grow, Shrink, Undo, Redo and Reset to AI counts of the latest edit request that
# got no answer (written by assets/sonotrace.js): those clicks moved nothing, and are
# not applied later
OFFSET_CLICKS_LOST = "offset-clicks-lost"
# {"page": token, "presses": [[op, n_clicks], ...]}: the Undo, Redo and Reset to AI
# presses of this drawing of the page, in the order they were made (the newest last;
# op "undo", "redo" or "reset"): the edit callback makes those its request brings in
# that order (annotate._step_clicks)
STEP_PRESSES = "step-presses"
# Written by assets/sonotrace.js at the first answer after an edit request that got none:
# the edit callback then records the graph edits that request carried (see _shown_edits)
EDIT_RESYNC = "edit-resync"
# Page-local echoes of the shell's stores: the page's callbacks fire on these, and
# read the shell's stores as State (see the note above the annotate page's callbacks).
IMAGE_OPENED = "image-opened"
OUTLINE_CHANGED = "outline-changed"
BOX_DONE = "box-done"  # not under the graph's dcc.Loading: drawing goes on during a box

# --- annotate page: image and tools
IMAGE_INFO = "image-info"
UPLOAD_ALERT = "upload-alert"
SERVER_ALERT = "server-alert"
SERVER_POLL = "server-poll"  # dcc.Interval: the status badge asks /health again
SERVER_BACK = "server-back"  # dcc.Interval: ticks once when the model server is back
SERVER_RECHECK = "server-recheck"  # dcc.Interval: asks for a health check's late answer
TOOL = "tool"
ERASE_BUTTON = "erase-button"
GROW_BUTTON = "grow-button"  # every outline a step wider (see _editing.offset_step)
SHRINK_BUTTON = "shrink-button"
RESET_BUTTON = "reset-button"
SHORTCUTS_BUTTON = "shortcuts-button"  # opens SHORTCUTS_PANEL (also the ? key)
SHORTCUTS_PANEL = "shortcuts-panel"  # the dialog listing the keyboard shortcuts
OVERLAY_OPACITY = "overlay-opacity"
OVERLAY_VISIBLE = "overlay-visible"
SHOW_CALIPERS = "show-calipers"
GRAPH_FRAME = "graph-frame"  # around the graph: carries the display levels as CSS variables
# The image's column (image, its tools, sliders): where keyboard shortcuts act on it
IMAGE_PANEL = "image-panel"
IMAGE_BRIGHTNESS = "image-brightness"
IMAGE_CONTRAST = "image-contrast"
LEVELS_RESET = "levels-reset"
AUTO_SEGMENT = "auto-segment"
EDIT_STATUS = "edit-status"
OUTLINE_SELECTED = "outline-selected"  # which outline is selected (R, or a click), said
GRAPH_LOADING = "graph-loading"
GRAPH_WAITING = "graph-waiting"  # the spinner over the graph, and what it waits for
BOX_WAITING = "box-waiting"  # over the graph, not covering it: a box is being segmented
ERASE_DUMMY = "erase-dummy"
# The outline as the graph shows it after a graph edit, and the drawing it was edited from
SHAPES_SHOWN = "shapes-shown"
SEGMENT_DONE = "segment-done"  # inside the graph's dcc.Loading: spinner while /predict runs
CLASSIFY_DONE = "classify-done"  # likewise for /classify

# --- annotate page: measurements, classification, record
MEASUREMENTS = "measurements"
PROBABILITY_GRAPH = "probability-graph"
AI_LABEL = "ai-label"
DESCRIPTOR_PREFIX = "descriptor-"  # + a name of _record.DESCRIPTOR_OPTIONS
NOTE = "note"
ANNOTATOR = "annotator"
ANNOTATOR_NAMES = "annotator-names"  # datalist: the names saved before, offered as typed
ANNOTATOR_HINT = "annotator-hint"  # where the name comes from (SONOTRACE_ANNOTATOR_HEADER)
SAVE_ALERT = "save-alert"
MARGIN_HINT = "margin-hint"  # says when the ticked margins contradict each other
# Says when the final label, the outline and the BI-RADS assessment disagree
READING_HINT = "reading-hint"
# Under the AI label: says when the outline and it came from different model versions
MODEL_VERSIONS_HINT = "model-versions-hint"
# dcc.ConfirmDialog: asks before a save leaves out the final label or the edited
# outline of the latest version (its OK saves anyway)
SAVE_QUESTION = "save-question"
# Above the image: "Saved before by Dr B ... [Load it to revise]", when the reader named
# has no version of the image and others have (their reading is not loaded unasked)
OTHERS_SAVES = "others-saves"
OTHERS_SAVES_TEXT = "others-saves-text"
OTHERS_SAVES_LOAD = "others-saves-load"
DOWNLOAD_SVG_BUTTON = "download-svg-button"
DOWNLOAD_PNG_BUTTON = "download-png-button"
DOWNLOAD_SVG = "download-svg"
DOWNLOAD_PNG = "download-png"
DOWNLOAD_SEG_BUTTON = "download-seg-button"  # a DICOM SEG, for images opened from a DICOM
DOWNLOAD_SEG = "download-seg"
DOWNLOAD_SR_BUTTON = "download-sr-button"  # a DICOM SR of the measurements, likewise
DICOM_DOWNLOADS = "dicom-downloads"  # wraps both: its title says why they are greyed out
DOWNLOAD_SR = "download-sr"
DOWNLOAD_NOTE = "download-note"  # why a download could not be made
SAVED_WORK = "saved-work"  # snapshot of the work at its last save (session storage)
SPACING_FORM = "spacing-form"  # calibration: shown when the file gives no pixel spacing
SPACING_INPUT = "spacing-input"  # mm per pixel, typed by the radiologist
SPACING_SET = "spacing-set"
SPACING_NOTE = "spacing-note"
# The last spacing Set in the browser session ({"mm", "name", "sha256", "width",
# "height"}), offered on the next image without one by SPACING_REUSE (one click)
SPACING_LAST = "spacing-last"
SPACING_REUSE = "spacing-reuse"  # "Use 0.08 mm/px (as set on case10.png)"
SPACING_REUSE_ROW = "spacing-reuse-row"  # the button and SPACING_REUSE_NOTE; hidden when none
SPACING_REUSE_NOTE = "spacing-reuse-note"  # says when that image had another size
# Calibration on the depth scale: Calibrate switches the graph to drawing a line; the
# line's length in mm (SPACING_LINE_MM) over its length in pixels fills SPACING_INPUT
SPACING_CALIBRATE = "spacing-calibrate"
# {"image", "mm", "source"}: the spacing a saved version was measured at, offered in the
# field as the image opens again; Set as offered keeps its source (calibrated, reused)
SPACING_OFFERED = "spacing-offered"
SPACING_CALIBRATION = "spacing-calibration"  # {"image": sha256, "pixels": float or None}
SPACING_LINE_DRAWN = "spacing-line-drawn"  # the graph's event holding the drawn line
SPACING_LINE_FORM = "spacing-line-form"  # "Line: 465.0 px = [ ] mm [Compute]"
SPACING_LINE_TEXT = "spacing-line-text"
SPACING_LINE_MM = "spacing-line-mm"
SPACING_LINE_COMPUTE = "spacing-line-compute"
UNSAVED_MARK = "unsaved-mark"  # class "dirty" while the work is in no save
UPLOAD_LIMIT = "upload-limit"  # wraps the upload; data-max-bytes for sonotrace.js
UPLOAD_REFUSED = "upload-refused"  # sonotrace.js writes a too-large file's refusal here
PREVIOUS_SAVES = "previous-saves"  # "saved vN by ... [Load]" for an image saved before
PREVIOUS_SAVES_TEXT = "previous-saves-text"
# {"image": sha256, "version": n}: the version that line names, the one Load it to revise loads
PREVIOUS_SAVES_SHOWN = "previous-saves-shown"
LOAD_SAVED_BUTTON = "load-saved-button"  # data-version: the version it loads
# Said in place of that button while the version it names is the work on screen
PREVIOUS_SAVES_ON_SCREEN = "previous-saves-on-screen"
# "Compare with [vN by ...]": another saved version's outline drawn beside the one on
# screen, read-only (annotation_client._compare), and its caption (version, label, Dice)
COMPARE = "compare"
COMPARE_VERSION = "compare-version"
COMPARE_CAPTION = "compare-caption"
# {"image": sha256, "version": n}: the version the graph draws beside the outline, or None
COMPARE_SHOWN = "compare-shown"
# {"image", "version", "paths", "at"}: a saved version to edit; {"image", "failed", "at"}
# when it could not be read
LOADED_SAVE = "loaded-save"
# The fixed bar at the foot of the side column: Save, Save & next, the save's message
ACTION_BAR = "action-bar"
SAVE_NEXT_BUTTON = "save-next-button"  # saves, then opens the next worklist entry
# {"clicks": n, "image": sha256}: the Save click that Save & next made, waiting for its answer
SAVE_NEXT_PENDING = "save-next-pending"
# {"image": sha256, "at": ms}: when this tab showed the image IMAGE_OPENED names, by the
# tab's own clock (performance.now()): a save press says how long it was seen (SAVE_PRESS)
IMAGE_SHOWN = "image-shown"
# {"clicks": n, "image": sha256, "shown_ms": ms or None, "over": sha256 or None,
# "opened": IMAGE_OPENED's "at"}: Save's latest press (a click, Ctrl+S, Save & next), the
# image on screen and how long this tab had shown it (_unseen_save), and the open it was on
SAVE_PRESS = "save-press"
# {"image", "name", "version"}: the save Save & next went on from, said once the next
# image is open (clear_save_message)
SAVED_BEFORE_NEXT = "saved-before-next"
# {"opened": IMAGE_OPENED's "at", "alert": component or None}: what Save's message becomes
# for the image just opened (clear_save_message), put there unless Save was pressed since
SAVE_ALERT_ON_OPEN = "save-alert-on-open"

# --- annotate page: worklist (SONOTRACE_WORKLIST_DIR)
WORKLIST_CARD = "worklist-card"  # hidden when no worklist is configured
WORKLIST = "worklist"  # the dropdown of entries; value = relative path
WORKLIST_REFRESH = "worklist-refresh"
WORKLIST_NEXT = "worklist-next"  # "Open next not annotated"
# Previous / Next in list order, whatever the status, and "Open: case07.png (7 of 18)"
WORKLIST_PREVIOUS = "worklist-previous"
WORKLIST_FOLLOWING = "worklist-following"
WORKLIST_POSITION = "worklist-position"
WORKLIST_NOTE = "worklist-note"  # counts, truncation, errors
WORKLIST_CONFIRM = "worklist-confirm"  # asks before unsaved work is replaced
WORKLIST_PENDING = "worklist-pending"  # the entry waiting for that answer
WORKLIST_REQUEST = "worklist-request"  # {"path", "at"}: the entry to open
WORKLIST_SENT = "worklist-sent"  # digest of the options the dropdown last got
SIGNIN_FOLLOWED = "signin-followed"  # True behind a sign-in proxy: a new user reloads
WORKLIST_LINK = "worklist-link"  # the entry the page's URL asks for (?open=path)
# {"path", "sha256"} of the worklist entry the tab has open (session storage: a reload
# opens it again, without the URL naming it, as worklist paths often name the patient);
# None for an upload. WORKLIST_REOPEN_ON: whether a reload may (not under blinded reading)
WORKLIST_REOPEN = "worklist-reopen"
WORKLIST_REOPEN_ON = "worklist-reopen-on"
# The tab's token for its worklist claim (session storage: kept over a visit to another
# page and a reload, so the tab's own claim never reads as another's; see _claims)
WORKLIST_CLAIM_TOKEN = "worklist-claim-token"
# {"entries": {path: sha256}, "at"}: the worklist files this tab failed to open (session
# storage), which Open next not annotated passes over until their bytes change
WORKLIST_FAILED = "worklist-failed"
SAVED_LINK = "saved-link"  # the kept upload the page's URL asks for (?saved=sha256)
LINK_EXPECT = "link-expect"  # the sha256 the linked entry held when saved (&expect=)
LINK_VERSION = "link-version"  # the saved version a link asks to load (&version=)
# The image a link opened, whose latest saved version is loaded once the AI outline is in.
REVISE_ON_OPEN = "revise-on-open"

# --- saved page (the index of saved annotations)
SAVED_PAGE_LOAD = "saved-page-load"
# Under blinded reading behind a sign-in proxy: the reader the page was drawn for, the
# poll that checks the sign-in, and the flag that draws the page afresh for a new one.
SAVED_SHOWN_FOR = "saved-shown-for"
SAVED_SIGNIN_POLL = "saved-signin-poll"
SAVED_AFRESH = "saved-afresh"
SAVED_ANNOTATOR = "saved-annotator"  # filter: dropdown of annotator names
SAVED_LABEL = "saved-label"  # filter: final label, "none" or any
SAVED_ASSESSMENT = "saved-assessment"  # filter: BI-RADS assessment, "none" or any
SAVED_LATEST = "saved-latest"  # switch: only each image's highest version
SAVED_REFRESH = "saved-refresh"
SAVED_CSV_BUTTON = "saved-csv-button"  # a link: /api/saved?format=csv with the filters
SAVED_ALERT = "saved-alert"
SAVED_SUMMARY = "saved-summary"  # counts and AI agreement of every matching row
SAVED_TABLE = "saved-table"
SAVED_AGREEMENT_BUTTON = "saved-agreement-button"  # hidden from readers under blinding
SAVED_AGREEMENT = "saved-agreement"  # how far readers agree (Dice, labels, kappas)
SAVED_PROGRESS_BUTTON = "saved-progress-button"  # hidden from readers under blinding
SAVED_PROGRESS = "saved-progress"  # how far each reader has got (images read, saved)


def descriptor(name: str) -> str:
    """The id of the BI-RADS descriptor control ``name`` (e.g. ``"margin"``)."""
    return DESCRIPTOR_PREFIX + name.replace("_", "-")
