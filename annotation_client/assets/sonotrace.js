/* SonoTrace annotation client: keyboard shortcuts for undo and redo, H, C, Delete, + and -.
 * Ctrl+Z / Cmd+Z clicks Undo, Ctrl+Y or Ctrl+Shift+Z clicks Redo, unless the focus
 * is in a text field (where the browser's own undo must keep working). H (or h,
 * without Ctrl, Alt or Meta) flips Show outline, to look at the margin under it
 * and back without leaving the image. C picks the Cut away tool (draw around what is
 * not lesion to take it off the outline). Delete or Backspace clicks Erase selected
 * while an outline is selected. + (or =) clicks Grow and - clicks Shrink, without
 * Ctrl or Meta, which with them zoom the browser.
 * They act on the image only from the image's own column (#image-panel: the graph,
 * its tool bar, sliders and switches) or from the page itself (nothing focused):
 * a key pressed while the focus is in the Record form, on a final-label radio, a
 * margin box or a button beside the image, belongs there, and must not erase,
 * hide or undo the outline behind the radiologist's back.
 * Deleting a vertex needs no code here: plotly.js removes a vertex of the selected
 * editable path when it is double-clicked, and reports the new path through
 * relayoutData like any other edit. */
(function () {
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
    var panel = document.getElementById("image-panel");
    if (target && target !== document.body && target !== document.documentElement &&
        !(panel && panel.contains(target))) {
      return;
    }
    // Keys typed into text belong to the text; a focused switch or radio takes none.
    var clickable = /^(checkbox|radio|button|submit|reset|range|file|color)$/i;
    if (tag === "textarea" || tag === "select" || (target && target.isContentEditable) ||
        (tag === "input" && !clickable.test(target.type || ""))) {
      return;
    }
    var key = (event.key || "").toLowerCase();
    if (key === "h" && !(event.ctrlKey || event.metaKey || event.altKey || event.repeat)) {
      var outline = document.getElementById("overlay-visible");
      if (outline && !outline.disabled) {
        event.preventDefault();
        outline.click();
      }
      return;
    }
    if (key === "c" && !(event.ctrlKey || event.metaKey || event.altKey || event.repeat)) {
      // C picks the Cut away tool (annotate.py's tool bar; dbc names its radios so).
      var cut = document.getElementById("_dbcprivate_radioitems_tool_input_cut");
      if (cut && !cut.disabled && !cut.checked) {
        event.preventDefault();
        cut.click();
      }
      return;
    }
    if ((key === "+" || key === "=" || key === "-") &&
        !(event.ctrlKey || event.metaKey || event.altKey)) {
      // One step a press: a held key's repeats would outrun the server, and the
      // browser keeps only the last of the answers on their way.
      if (event.repeat) { event.preventDefault(); return; }
      var offset = document.getElementById(key === "-" ? "shrink-button" : "grow-button");
      if (offset && !offset.disabled) {
        event.preventDefault();
        offset.click();
      }
      return;
    }
    if ((key === "delete" || key === "backspace") &&
        !(event.ctrlKey || event.metaKey || event.altKey)) {
      // Only with an outline selected: elsewhere these keys mean nothing on this page,
      // and a stray Backspace should not be answered with "nothing is selected".
      var gd = document.querySelector("#annotation-graph .js-plotly-plot");
      var active = gd && gd._fullLayout ? gd._fullLayout._activeShapeIndex : null;
      var erase = document.getElementById("erase-button");
      if (typeof active === "number" && active >= 0 && erase && !erase.disabled) {
        event.preventDefault();
        erase.click();
      }
      return;
    }
    if (!(event.ctrlKey || event.metaKey)) { return; }
    var id = null;
    if (key === "z" && !event.shiftKey) { id = "undo-button"; }
    else if (key === "y" || (key === "z" && event.shiftKey)) { id = "redo-button"; }
    if (!id) { return; }
    var button = document.getElementById(id);
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
})();

/* Saving from the keyboard: Ctrl+S (Cmd+S on a Mac) clicks Save, Ctrl+Shift+S clicks
 * Save & next (there with a worklist). From anywhere on the Annotate page but a text
 * field or a textarea, where the keys belong to what is typed: except Ctrl+S in the
 * note, the field a case ends in (it sends every keystroke to the page, so the save
 * has the whole note). A select (BI-RADS assessment, the descriptors) sends its choice
 * as it is made, so Ctrl+S saves from it too: it is where a reading often ends. The
 * annotator's name is sent only when its field is left: a save from it would go out
 * without what was just typed. The browser's "Save page as" is kept away everywhere
 * on the page, text fields included: it would write the patient's image to disk. */
(function () {
  var clickable = /^(checkbox|radio|button|submit|reset|range|file|color)$/i;

  function typing(target) {
    var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
    return tag === "textarea" || !!(target && target.isContentEditable) ||
      (tag === "input" && !clickable.test(target.type || ""));
  }

  document.addEventListener("keydown", function (event) {
    if ((event.key || "").toLowerCase() !== "s" || !(event.ctrlKey || event.metaKey) ||
        event.altKey) {
      return;
    }
    if (!document.getElementById("save-button")) { return; }  // not the Annotate page
    var target = event.target;
    var inNote = target && target.id === "note" && !event.shiftKey;
    event.preventDefault();
    if (typing(target) && !inNote) { return; }
    if (event.repeat) { return; }  // a held key saves once
    var button = document.getElementById(event.shiftKey ? "save-next-button" : "save-button");
    // offsetParent: Save & next is on the page but not shown without a worklist.
    if (button && !button.disabled && button.offsetParent !== null) { button.click(); }
  });

  // When Save or Save & next was last pressed (a click, Enter, or the keys above, which
  // click it), by the tab's clock: annotate's SAVE_PRESS counts how long the image had
  // been shown up to it, not up to when Dash gets round to that callback (on a busy
  // page, once one of the requests in flight has answered). And which image the graph
  // showed then (its uirevision, the image's sha256: _figure.FRESH_VIEW_SCRIPT), null
  // before one was drawn: by the time that callback runs another may be open, and the
  // save refuses a press made over another image than the one it would save.
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ?
      event.target.closest("#save-button, #save-next-button") : null;
    if (!button || button.disabled) { return; }
    var gd = document.querySelector("#annotation-graph .js-plotly-plot");
    var image = gd && gd.__sonotraceImage;
    window.sonotraceSavePressed = performance.now();
    window.sonotraceSavePressedOver = typeof image === "string" ? image : null;
  }, true);

  // ? opens the list of the page's keys (the tool bar's Keys button, annotate._shortcuts),
  // from anywhere on the Annotate page but where it is typed: a text field, a select
  // (whose type-ahead takes it) or a dialog already open.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "?" || event.ctrlKey || event.metaKey || event.altKey ||
        event.repeat) {
      return;
    }
    var target = event.target;
    if (typing(target) || (target && target.tagName === "SELECT") ||
        (target && target.closest && target.closest(".modal"))) {
      return;
    }
    var button = document.getElementById("shortcuts-button");
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
})();

/* The mouse wheel over the image scrolls the page, as everywhere else on it: the
 * image fills most of the window, and a wheel that zoomed it there (plotly's
 * scrollZoom) left the radiologist no place to scroll to Save and the worklist.
 * Ctrl+wheel zooms, and so does a trackpad's pinch (which the browser sends as
 * ctrl+wheel): those go on to plotly. Stopped here, in the capture phase on the
 * window, before plotly's own listener under it sees the event; the page's scroll
 * is the browser's default, which stopping the event leaves alone. The first few
 * times a plain wheel is used over an image, a hint says how to zoom, as embedded
 * maps do. */
(function () {
  var HINTS = 3;  // gestures that show the hint, per page load
  var GESTURE_GAP_MS = 800;  // wheel events closer than this are one gesture
  var SHOWN_MS = 1500;
  var hints = 0, last = 0, timer = null;

  function hint(frame) {
    var box = document.getElementById("wheel-hint");
    if (!box) {
      box = document.createElement("div");
      box.id = "wheel-hint";
      box.className = "sonotrace-wheel-hint";
      // For the mouse only: the keyboard and screen readers do not wheel.
      box.setAttribute("aria-hidden", "true");
      box.textContent = "Ctrl + scroll to zoom";
    }
    if (box.parentNode !== frame) { frame.appendChild(box); }
    box.classList.add("shown");
    clearTimeout(timer);
    timer = setTimeout(function () { box.classList.remove("shown"); }, SHOWN_MS);
  }

  window.addEventListener("wheel", function (event) {
    var graph = document.getElementById("annotation-graph");
    if (!graph || !event.target || !graph.contains(event.target) || event.ctrlKey) { return; }
    event.stopPropagation();
    var now = Date.now();
    var gesture = now - last > GESTURE_GAP_MS;
    last = now;
    var frame = document.getElementById("graph-frame");
    if (gesture && frame && hints < HINTS && graph.querySelector(".imagelayer image")) {
      hints += 1;
      hint(frame);
    }
  }, {capture: true, passive: true});
})();

/* Nothing is lost without asking. The outline history, label and note live in
 * the page's memory, so a reload, a closed tab or the next file would drop
 * them: while the work is unsaved (#unsaved-flag.dirty, kept by the
 * mark_unsaved callback in the app's shell, so that it is still there on the
 * Saved and Learn pages), the browser asks first. A file over the upload
 * limit is refused here, before it is sent: the server drops a request that
 * large without an answer the page could show. */
(function () {

  function unsaved() {
    return !!document.querySelector("#unsaved-flag.dirty");
  }

  var afresh = false;

  /* Another user signed in to this tab (the annotate page's
   * start_afresh_for_a_new_sign_in): the page is drawn again for them, at its
   * path without the query, and the last user's unsaved work is dropped without
   * asking, since it cannot be saved under its author's name any more. */
  window.sonotrace = window.sonotrace || {};
  window.sonotrace.startAfresh = function () {
    afresh = true;
    window.location.replace(window.location.pathname);
  };

  window.addEventListener("beforeunload", function (event) {
    if (afresh || !unsaved()) { return; }
    event.preventDefault();
    event.returnValue = "";  // what older browsers need to ask
  });

  function megabytes(bytes, digits) {
    // MB here are MiB, as in SONOTRACE_MAX_UPLOAD_MB and the server's message.
    return Number((bytes / 1048576).toFixed(digits)).toString();
  }

  function refuse(file, limit) {
    var box = document.getElementById("upload-refused");
    if (!box) { return; }
    var alert = document.createElement("div");
    alert.id = "upload-too-large";
    alert.className = "alert alert-danger";
    alert.setAttribute("role", "alert");
    var title = document.createElement("strong");
    title.textContent = "Cannot open this file. ";
    alert.appendChild(title);
    var keep = document.getElementById("image-name") ?
      " The open image and its outline are unchanged." : "";
    // textContent, not markup: the file name comes from the user's disk.
    alert.appendChild(document.createTextNode(
      file.name + " is " + megabytes(file.size, 1) + " MB; the limit is " +
      megabytes(limit, 3) + " MB." + keep));
    box.replaceChildren(alert);
    // The page's own refusal of the file before (#upload-error, a damaged file, say)
    // is out of date: hidden while this one stands (sonotrace.css), not removed,
    // since the page still owns that element and may reuse it.
    document.body.classList.add("sonotrace-refused-here");
  }

  function endDrag(holder) {
    // The drop zone lights up on dragenter and goes dark on its own drop, which
    // block() keeps from it: a dragleave from every element it may have counted
    // as entered tells it the drag is over.
    var nodes = [holder].concat(Array.prototype.slice.call(holder.querySelectorAll("*")));
    nodes.forEach(function (node) {
      node.dispatchEvent(new DragEvent("dragleave", {bubbles: true, cancelable: true}));
    });
  }

  function block(event, holder) {
    event.preventDefault();  // a dropped file must not replace the page either
    event.stopImmediatePropagation();
    if (event.target && event.target.type === "file") { event.target.value = ""; }
    if (event.type === "drop") { endDrag(holder); }
  }

  function guard(event, files) {
    var holder = document.getElementById("upload-limit");
    if (!holder || !event.target || !holder.contains(event.target)) { return; }
    if (!files || !files.length) { return; }
    var box = document.getElementById("upload-refused");
    if (box) { box.replaceChildren(); }
    document.body.classList.remove("sonotrace-refused-here");
    var file = files[0];  // before block(): clearing the input empties its list
    var limit = Number(holder.getAttribute("data-max-bytes"));
    if (limit > 0 && file.size > limit) {
      block(event, holder);
      refuse(file, limit);
      return;
    }
    // The page's own wording (annotate.UNSAVED_QUESTION), as the worklist asks it.
    var question = holder.getAttribute("data-unsaved-question");
    if (unsaved() && !window.confirm(question)) { block(event, holder); }
  }

  // Load it to revise puts a saved version's label, descriptors and note in place of
  // those on screen: asked first, as a new file is. Its container holds the page's
  // wording (annotate.LOAD_QUESTION); a declined click never reaches Dash. A load the
  // page starts itself (on opening an image with a version) is no click, so not asked.
  window.addEventListener("click", function (event) {
    var target = event.target;
    var button = target && target.closest &&
      target.closest("#load-saved-button, #others-saves-load");
    if (!button || button.disabled || !unsaved()) { return; }
    var holder = button.closest("[data-unsaved-question]");
    if (holder && !window.confirm(holder.getAttribute("data-unsaved-question"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Capture on window runs before the upload component's own handlers.
  window.addEventListener("drop", function (event) {
    guard(event, event.dataTransfer && event.dataTransfer.files);
  }, true);
  window.addEventListener("change", function (event) {
    if (event.target && event.target.type === "file") { guard(event, event.target.files); }
  }, true);
})();

/* A case opened from the worklist (a pick, Open next, Previous or Next) or by Save &
 * next: the focus goes from the button or list it was opened with to the image's column,
 * so that the image's keys (+, -, H, C, Ctrl+Z) act on it at once. It stayed on the
 * button, where they do nothing (they belong to the image's column only), and getting
 * back took several Shift+Tab. Focus elsewhere (a field being typed in) is left alone. */
(function () {
  var shown = null;
  new MutationObserver(function () {
    // The file's name and its folder: PACS exports repeat names (IM00001.dcm) in
    // every study's folder.
    var name = document.getElementById("image-name");
    var folder = document.getElementById("image-folder");
    var now = name ? (folder ? folder.textContent : "") + name.textContent : null;
    if (now === shown) { return; }
    shown = now;
    var active = document.activeElement;
    var panel = document.getElementById("image-panel");
    // Nothing focused counts too: a mouse click on Save & next leaves the page itself
    // focused (see the buttons disabled while their request runs, below).
    var nowhere = !active || active === document.body || active === document.documentElement;
    if (!now || !panel || (!nowhere && (!active.closest ||
        !active.closest("#worklist-card, #action-bar")))) {
      return;
    }
    if (!panel.hasAttribute("tabindex")) { panel.setAttribute("tabindex", "-1"); }
    panel.focus({preventScroll: true});
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
})();

/* Tab and Shift+Tab move the focus through a table (the Saved page's) and out of it.
 * Dash's DataTable answers Tab itself, moving its own active cell, and swallowed it even
 * with cells made unselectable: the focus stayed on the table, and the Open links in
 * its rows (and anything after it) could not be reached from the keyboard. Stopped
 * here, on the way down to the table, the key keeps the browser's own meaning. */
(function () {
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "Tab" && target && target.closest &&
        target.closest(".dash-spreadsheet-container")) {
      event.stopPropagation();
    }
  }, true);
})();

/* Enter on a link in a table (the Saved page's Open, and the DICOM column's SEG and SR)
 * follows it, as everywhere else. Dash's DataTable takes Enter for its active cell and
 * cancels it, so the keyboard reached the link and could not open it. Stopped here, on
 * the way down, the key keeps the browser's own meaning. Space follows the link too:
 * inside the table it is the row's action, as it sorts on a sort button, where the
 * table would cancel it as well. */
(function () {
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if ((event.key !== "Enter" && event.key !== " ") || !target || !target.closest ||
        target.tagName !== "A" || !target.hasAttribute("href") ||
        !target.closest(".dash-spreadsheet-container")) {
      return;
    }
    event.stopPropagation();
    if (event.key === " ") {
      event.preventDefault();  // the page's scroll
      if (!event.repeat) { target.click(); }
    }
  }, true);
})();

/* R selects an outline from the keyboard, as a click on it does: only a pointer could,
 * so one wrong region of several could not be taken off with Delete or Erase selected
 * (Grow, Shrink and Reset act on all of them). Each R selects the next region, Shift+R
 * the one before, and past the last none; Escape lets go of it. plotly.js draws it
 * selected, with its vertices, as after a click, and the line under the graph
 * (#outline-selected, a status region) says which ("Outline 2 of 3 selected"), for a
 * click too; it changes, and is read out, only when the selection does. Only with Pan or
 * Zoom, where the outline is editable (_figure.EDITING_DRAGMODES): with a drawing tool
 * plotly.js does not show it selected, and Delete would erase it unseen. From where the
 * image's other keys act: its column, or nothing focused. */
(function () {
  var SAID = "outline-selected";
  var CUT = "cut";  // _shapes.CUT_NAME: a cut being drawn is no region
  var last = null;  // the selection last said, "index/regions"

  function graph() { return document.querySelector("#annotation-graph .js-plotly-plot"); }

  // The outline's regions, as indices of the layout's shapes.
  function regions(gd) {
    var found = [];
    ((gd && gd.layout && gd.layout.shapes) || []).forEach(function (shape, i) {
      if (shape && shape.type === "path" && shape.name !== CUT) { found.push(i); }
    });
    return found;
  }

  function activeIndex(gd) {
    var active = gd && gd._fullLayout ? gd._fullLayout._activeShapeIndex : null;
    return typeof active === "number" && active >= 0 ? active : null;
  }

  function tell(text) {
    if (!document.getElementById(SAID) || !window.dash_clientside ||
        !window.dash_clientside.set_props) { return; }
    window.dash_clientside.set_props(SAID, {children: text});
  }

  // Says the selection if it changed since it was last said.
  function sayChanged() {
    var gd = graph();
    if (!gd || !document.getElementById(SAID)) { last = null; return; }
    var list = regions(gd);
    var at = list.indexOf(activeIndex(gd));
    var now = at + "/" + list.length;
    if (now === last) { return; }
    var had = last !== null && last.charAt(0) !== "-";
    last = now;
    if (at < 0) {
      tell(had ? "No outline selected." : "");
      return;
    }
    tell("Outline " + (at + 1) + " of " + list.length +
      " selected: Delete erases it; R selects the next.");
  }

  function forTheImage(target) {
    var panel = document.getElementById("image-panel");
    if (target && target !== document.body && target !== document.documentElement &&
        !(panel && panel.contains(target))) {
      return false;
    }
    var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
    var clickable = /^(checkbox|radio|button|submit|reset|range|file|color)$/i;
    return !(tag === "textarea" || tag === "select" || (target && target.isContentEditable) ||
             (tag === "input" && !clickable.test(target.type || "")));
  }

  function step(gd, back) {
    var list = regions(gd);
    if (!list.length) { tell("There is no outline to select."); last = null; return; }
    if (list.some(function (i) { return gd.layout.shapes[i].editable !== true; })) {
      tell("Pick Pan or Zoom (the editing tool) to select an outline with R.");
      last = null;
      return;
    }
    // Positions 0..n-1 are the regions, n is none: R goes round them all.
    var at = list.indexOf(activeIndex(gd));
    if (at < 0) { at = list.length; }
    var next = (at + (back ? list.length : 1)) % (list.length + 1);
    if (next === list.length) {
      if (typeof gd._fullLayout._deactivateShape === "function") {
        gd._fullLayout._deactivateShape(gd);
      }
      return;
    }
    var path = gd.querySelector('.shapelayer path[data-index="' + list[next] + '"]');
    // plotly.js selects the outline clicked (the click handler of its editable shapes).
    if (path) { path.dispatchEvent(new MouseEvent("click")); }
  }

  document.addEventListener("keydown", function (event) {
    var key = (event.key || "").toLowerCase();
    if ((key !== "r" && key !== "escape") || event.ctrlKey || event.metaKey ||
        event.altKey || !forTheImage(event.target)) {
      return;
    }
    var gd = graph();
    if (!gd || !gd._fullLayout) { return; }
    if (key === "escape") {
      if (activeIndex(gd) === null ||
          typeof gd._fullLayout._deactivateShape !== "function") { return; }
      event.preventDefault();
      gd._fullLayout._deactivateShape(gd);
      return;
    }
    event.preventDefault();
    if (!event.repeat) { step(gd, event.shiftKey); }
  });

  // plotly.js draws the outline's shapes again on every selection, by key or click.
  new MutationObserver(sayChanged).observe(document.documentElement,
                                           {childList: true, subtree: true});
})();

/* A button disabled while its request runs (Dash's `running`: Save, Save & next,
 * Auto-segment, Classify, Load it to revise) gets the keyboard's focus back when it is
 * enabled again. The browser drops the focus of a button that is disabled to the page
 * itself: after Enter on Save the focus was nowhere, with no ring to show it, and a
 * screen reader was left at the document's top. Only if nothing has taken the focus
 * meanwhile (a field, or the image's column when Save & next opens the next case), and
 * only if the button is still shown. Only a button pressed from the keyboard: after a
 * click the focus stays on the page, where the image's keys (H, C, R, Delete, Ctrl+Z)
 * act, and a mouse user clicking Classify then pressing H found them dead until the
 * image was clicked (audit 805 F1). */
(function () {
  var lost = null;  // the id of the button that lost the focus by being disabled
  var byPointer = false;  // whether the last press was a pointer's, not a key's
  document.addEventListener("pointerdown", function () { byPointer = true; }, true);
  document.addEventListener("keydown", function () { byPointer = false; }, true);
  // The buttons annotate.py disables while their request runs. Not every button: Undo,
  // disabled at the history's end, is not enabled again by its own request, and the
  // focus would jump back to it at some later edit.
  var RUNNING = ["save-button", "save-next-button", "segment-button", "classify-button",
                 "load-saved-button", "others-saves-load"];
  // Load it to revise is hidden once its version is on screen: the focus goes to the
  // image's column, where the version's outline now is, as when a case opens.
  var HIDDEN_THEN = {"load-saved-button": "image-panel", "others-saves-load": "image-panel"};

  function nowhere() {
    var active = document.activeElement;
    return !active || active === document.body || active === document.documentElement;
  }

  function hidden(button) {
    setTimeout(function () {
      var next = document.getElementById(HIDDEN_THEN[button.id]);
      if (!next || !nowhere()) { return; }
      if (!next.hasAttribute("tabindex")) { next.setAttribute("tabindex", "-1"); }
      next.focus({preventScroll: true});
    }, 0);
  }

  // Undo and Redo are disabled at the history's end, by the answer to their own press:
  // a keyboard user who undid the last step was left with the focus nowhere. It goes to
  // the other one, which that press made useful, or to the image's column.
  var PARTNER = {"undo-button": "redo-button", "redo-button": "undo-button"};

  function handOver(button) {
    setTimeout(function () {
      if (!nowhere()) { return; }
      var other = document.getElementById(PARTNER[button.id]);
      var next = other && !other.disabled && other.offsetParent !== null ? other
        : document.getElementById("image-panel");
      if (!next) { return; }
      if (next.id === "image-panel" && !next.hasAttribute("tabindex")) {
        next.setAttribute("tabindex", "-1");
      }
      next.focus({preventScroll: true});
    }, 0);
  }

  document.addEventListener("focusout", function (event) {
    var button = event.target;
    if (button && PARTNER[button.id] && button.disabled && !event.relatedTarget &&
        !byPointer) {
      handOver(button);
      return;
    }
    if (!button || RUNNING.indexOf(button.id) < 0 || event.relatedTarget) { return; }
    if (button.disabled) {
      lost = byPointer ? null : button.id;
    } else if (HIDDEN_THEN[button.id] && button.offsetParent === null) {
      hidden(button);
    }
  }, true);
  document.addEventListener("focusin", function () { lost = null; }, true);
  // Chromium focuses a button it clicks, and drops the focus when the button is disabled
  // only if that lasts until its next rendering: after a quick answer the focus stayed
  // on the button, outside the image's column, and the image's keys did nothing.
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("button") : null;
    if (!button || !byPointer || RUNNING.indexOf(button.id) < 0) { return; }
    setTimeout(function () {
      if (document.activeElement === button) { button.blur(); }
    }, 0);
  }, true);

  new MutationObserver(function () {
    if (lost === null) { return; }
    var button = document.getElementById(lost);
    if (!button || !nowhere()) { lost = null; return; }  // gone, or the focus is elsewhere
    if (button.disabled) { return; }
    lost = null;
    if (button.offsetParent !== null) { button.focus({preventScroll: true}); }
  }).observe(document.documentElement, {attributes: true, attributeFilter: ["disabled"],
                                        subtree: true});
})();

/* The model server's badge (#server-status) changed silently: a server that went away
 * or came back mid-session was news only to someone looking at it. Its new text is put in
 * a polite status region beside it (#server-status-said, hidden from view), which a
 * screen reader reads out. Not the badge itself: the health poll draws it anew every
 * 20 s, and a live badge would be read out at every poll. Its first text on a page is
 * not said (a server down at the page's load has its alert). */
(function () {
  var badge = null;  // the badge element last seen
  var shown = null;  // its text, once it had one

  new MutationObserver(function () {
    var now = document.getElementById("server-status");
    if (now !== badge) { badge = now; shown = null; }
    if (!now) { return; }
    var text = now.textContent.replace(/\s+/g, " ").trim();
    if (!text || text === shown) { return; }
    var first = shown === null;
    shown = text;
    var dc = window.dash_clientside;
    if (!first && document.getElementById("server-status-said") && dc && dc.set_props) {
      dc.set_props("server-status-said", {children: text});
    }
  }).observe(document.documentElement, {childList: true, subtree: true, characterData: true});
})();

/* A slider's handle is what a screen reader lands on, and Dash's slider gives it no
 * name: each handle is named by the label of its slider (<label for=ID> of the
 * slider's container), as the page's other fields are, and so is a group of radio
 * buttons or check boxes. Likewise the upload's file
 * field is named by its drop zone's text, and a table that scrolls sideways (the
 * Saved page's) can take the keyboard's focus, so it can be scrolled without a
 * mouse. These come and go with the pages, so every change of the page is looked
 * at. The vertex density's label also says the value the handle stands at (its
 * marks are 32 apart, its steps 4). */
(function () {
  function showDensity() {
    var thumb = document.querySelector("#vertex-density [role=slider]");
    var shown = document.getElementById("vertex-density-value");
    var value = thumb && thumb.getAttribute("aria-valuenow");
    if (shown && value !== null && shown.textContent !== value) { shown.textContent = value; }
  }

  function each(selector, act) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), act);
  }

  // The id of the <label for=ID> of the field ID (given one if it has none), or null.
  function labelId(id) {
    var label = document.querySelector('label[for="' + id + '"]');
    if (!label) { return null; }
    if (!label.id) { label.id = id + "-label"; }
    return label.id;
  }

  function name() {
    each(".dash-slider-thumb", function (thumb) {
      if (thumb.hasAttribute("aria-labelledby")) { return; }
      var slider = thumb.closest(".dash-slider-container[id]");
      var label = slider && labelId(slider.id);
      if (label) { thumb.setAttribute("aria-labelledby", label); }
    });
    each("#image-upload input[type=file]:not([aria-label])", function (field) {
      var zone = document.querySelector("#image-upload .sonotrace-upload");
      field.setAttribute("aria-label", zone ? zone.textContent : "Open an image");
    });
    // Dash's dropdown names its button by the value shown ("Any annotator"): the
    // field's own label goes first, as for a select ("Annotator, Any annotator").
    each("button.dash-dropdown[id]", function (button) {
      var label = labelId(button.id);
      var names = (button.getAttribute("aria-labelledby") || "").split(/\s+/);
      if (label && names[0] !== label) {
        button.setAttribute("aria-labelledby", [label].concat(names).join(" ").trim());
      }
    });
    // A label for a set of radio buttons or check boxes (dbc.RadioItems, Checklist)
    // points at their container, a DIV, which a label cannot name: the container
    // becomes a group named by it (the final label, the margin, the editing tools).
    each("label[for]", function (label) {
      var group = document.getElementById(label.getAttribute("for"));
      if (!group || group.tagName !== "DIV" || group.hasAttribute("role")) { return; }
      var radio = group.querySelector("input[type=radio]");
      if (!radio && !group.querySelector("input[type=checkbox]")) { return; }
      group.setAttribute("role", radio ? "radiogroup" : "group");
      group.setAttribute("aria-labelledby", labelId(group.id));
    });
    each(".dash-spreadsheet-container:not([tabindex])", function (table) {
      table.setAttribute("tabindex", "0");
    });
    // Bootstrap's accordion header is an h2 whatever it sits under: in a section that
    // has its own h2 (the Learn page's), a screen reader's list of headings put the
    // questions beside their section instead of under it.
    each("section .accordion .accordion-header:not([aria-level])", function (header) {
      var section = header.closest("section");
      if (header.tagName === "H2" && section && section.querySelector(":scope > h2")) {
        header.setAttribute("aria-level", "3");
      }
    });
    each(".column-header--sort", sortButton);
  }

  // Dash's table sorts on a click of an icon in the column's header, a SPAN no key
  // reaches: it becomes a button named by its column and the order it is sorted in,
  // and the header says that order too (aria-sort), as a screen reader expects.
  function sortButton(sort) {
    if (!sort.hasAttribute("tabindex")) {
      sort.setAttribute("tabindex", "0");
      sort.setAttribute("role", "button");
    }
    var header = sort.closest("th");
    var title = header && header.querySelector(".column-header-name");
    var icon = sort.querySelector("svg[data-icon]");
    var shown = icon ? icon.getAttribute("data-icon") : "sort";
    var order = {"sort-up": "ascending", "sort-down": "descending"}[shown] || "none";
    var label = "Sort by " + (title ? title.textContent.trim() : "this column") +
      (order === "none" ? "" : " (sorted " + order + ")");
    if (sort.getAttribute("aria-label") !== label) { sort.setAttribute("aria-label", label); }
    if (header && header.getAttribute("aria-sort") !== order) {
      header.setAttribute("aria-sort", order);
    }
  }

  new MutationObserver(function (records) {
    // Cheap (a few sliders), and only when something was added or a sort icon
    // turned: a drag of the outline changes attributes, not the page's elements.
    if (records.some(function (r) {
      return r.addedNodes.length || r.attributeName === "data-icon";
    })) { name(); }
    showDensity();
  }).observe(document.documentElement, {
    childList: true, subtree: true, attributes: true,
    attributeFilter: ["aria-valuenow", "data-icon"],
  });

  // Enter or Space on a sort button sorts, as a click does; stopped on the way down,
  // so that the table does not take the key for its active cell.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if ((event.key === "Enter" || event.key === " ") && target && target.classList &&
        target.classList.contains("column-header--sort")) {
      event.preventDefault();
      event.stopPropagation();
      if (!event.repeat) { target.click(); }
    }
  }, true);
})();

/* A field reached by Tab (or scrolled to by the browser for any reason) stops above
 * the sticky action bar (annotate._action_bar), not under it. The bar is about 48 px
 * high alone and more than twice that with a save's message, so the page's scroll
 * padding follows its height; sonotrace.css's 4.5rem holds until this has run, and on
 * the pages without the bar. */
(function () {
  var watched = null;
  var sizes = new ResizeObserver(fit);

  function fit() {
    var root = document.documentElement;
    if (!watched || !watched.isConnected) {
      root.style.removeProperty("scroll-padding-bottom");
      return;
    }
    // A little air over the bar, as the stylesheet's value leaves.
    var height = Math.ceil(watched.getBoundingClientRect().height) + 16;
    root.style.scrollPaddingBottom = height + "px";
  }

  new MutationObserver(function () {
    var bar = document.getElementById("action-bar");
    if (bar === watched) { return; }
    if (watched) { sizes.unobserve(watched); }
    watched = bar;
    if (bar) { sizes.observe(bar); }
    fit();
  }).observe(document.documentElement, {childList: true, subtree: true});
})();

/* A click inside an outline selects it, as a click on its edge does: the radiologist
 * points at the lesion, not at a 2 px line. plotly.js lets a click reach a shape's
 * inside only when its fill is over half opaque, and the outline's fill stays at most
 * half (_figure.MAX_FILL_OPACITY) so that the image shows through. Only with the Pan
 * tool, where a click selects (the drawing tools start a region with it), and only for
 * a press that did not move (a pan's drag). No click event comes: plotly.js covers the
 * page while the button is down, so the press ends on its cover. After plotly.js's own
 * answer to the release (which deselects the outline selected), the topmost outline
 * holding the point is clicked, and plotly.js selects it as for its edge. A selected
 * outline takes the click itself, inside as on its edge: plotly.js then deselects it,
 * as a second click on its edge does. */
(function () {
  var STILL_PX = 3;
  var down = null;

  function outlineAt(gd, x, y) {
    var shapes = gd.querySelectorAll(".shapelayer path[data-index]");
    for (var i = shapes.length - 1; i >= 0; i--) {
      var toShape = shapes[i].getScreenCTM();
      if (!toShape) { continue; }
      var point = new DOMPoint(x, y).matrixTransform(toShape.inverse());
      if (shapes[i].isPointInFill(point)) { return shapes[i]; }
    }
    return null;
  }

  window.addEventListener("mousedown", function (event) {
    down = null;
    var graph = document.getElementById("annotation-graph");
    var target = event.target;
    if (event.button !== 0 || !graph || !graph.contains(target) || !target.closest ||
        !target.closest(".draglayer")) {
      return;  // not the plot's background: a shape, the mode bar, elsewhere
    }
    var gd = graph.querySelector(".js-plotly-plot") || graph;
    if (gd._fullLayout && gd._fullLayout.dragmode === "pan") {
      down = {x: event.clientX, y: event.clientY, gd: gd};
    }
  }, true);
  window.addEventListener("mouseup", function (event) {
    var press = down;
    down = null;
    if (!press || Math.abs(event.clientX - press.x) > STILL_PX ||
        Math.abs(event.clientY - press.y) > STILL_PX) {
      return;
    }
    setTimeout(function () {
      var shape = outlineAt(press.gd, press.x, press.y);
      if (shape) { shape.dispatchEvent(new MouseEvent("click")); }
    }, 0);
  }, true);
})();

/* A request the client never answered (it was restarting, the network went): Dash's
 * renderer then leaves the buttons its callback disables while it runs (`running`:
 * Save, Classify, Auto-segment, Load) disabled for good, and says nothing; Save stayed
 * grey, Ctrl+S did nothing, and the page still looked well. The renderer's requests
 * go through fetch: its list of callbacks gives each one's "done" values, which are
 * put back here when a request fails without an answer, and the page says what
 * happened. The next answer from the client (the health poll's, within 20 s) puts
 * the badge right again. A Grow or Shrink click in an edit request that got no answer
 * (or an error for one) moved nothing on screen: the counts it carried go to the page's
 * offset-clicks-lost store, and the edit callback does not apply those clicks later
 * (the next Grow, once the client is back, grew by two steps). A graph edit in such a
 * request (a dragged vertex) stays on screen but never reached the outline history: at
 * the client's next good answer the page's edit-resync store is written, on which the
 * edit callback records it from the screen (annotate._shown_edits), as Save does. */
(function () {
  var runningOff = {};  // a callback's output key -> {"id.property": value when done}
  var lost = null;  // the counts last written to offset-clicks-lost
  var owed = false;  // an edit request got no good answer: its edits are to be recorded
  var realFetch = window.fetch.bind(window);
  var UNREACHABLE = "Cannot reach the SonoTrace client. Your work is still on this " +
    "page: try again when it answers.";

  function path(input) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    return url.split("?")[0];
  }

  function say(id, children) {
    if (document.getElementById(id)) { window.dash_clientside.set_props(id, {children: children}); }
  }

  function recover(body) {
    var dc = window.dash_clientside;
    var output = null;
    try { output = JSON.parse(body).output; } catch (e) { return; }
    if (!dc || !dc.set_props || typeof output !== "string") { return; }
    var done = runningOff[output] || {};
    Object.keys(done).forEach(function (key) {
      var dot = key.lastIndexOf(".");
      var id = key.slice(0, dot);
      if (!document.getElementById(id)) { return; }  // another page's
      var props = {};
      props[key.slice(dot + 1)] = done[key];
      dc.set_props(id, props);
    });
    say("server-status", {type: "Span", namespace: "dash_html_components",
                          props: {className: "badge bg-danger", children: "client unreachable",
                                  title: UNREACHABLE}});
    if (output.indexOf(".save-alert.children.") >= 0) {
      // "Not saved" may be untrue: the answer can be lost after the files were written.
      // Saving again tells: "Nothing changed since version N" if it was.
      say("save-alert", {type: "Div", namespace: "dash_html_components",
                         props: {className: "alert alert-danger py-2 mb-2", role: "alert",
                                 children: "Not saved, or not confirmed. " + UNREACHABLE +
                                   " A save that was made then says Nothing changed."}});
    }
  }

  function lostClicks(body) {
    var request = null;
    try { request = JSON.parse(body); } catch (e) { return; }
    var counts = {}, page = null;
    // Grow and Shrink's, and Undo, Redo and Reset to AI's (see annotate._step_clicks).
    var buttons = ["grow-button", "shrink-button", "undo-button", "redo-button",
                   "reset-button"];
    ((request && request.inputs) || []).forEach(function (input) {
      if (input && input.property === "n_clicks" && buttons.indexOf(input.id) >= 0) {
        counts[input.id.split("-")[0]] = Math.max(0, Number(input.value) || 0);
      }
    });
    ((request && request.state) || []).forEach(function (state) {
      if (state && state.id === "annotate-page-load" && state.property === "data") {
        page = state.value;
      }
    });
    // Not the edit callback's request, or the page it came from is no longer shown.
    if (!("grow" in counts) || typeof page !== "string" ||
        !document.getElementById("grow-button")) {
      return;
    }
    var kept = lost && lost.page === page ? lost : {};
    // Requests can fail out of order: counts only grow on one drawing of the page.
    lost = {page: page};
    buttons.forEach(function (id) {
      var key = id.split("-")[0];
      lost[key] = Math.max(kept[key] || 0, counts[key] || 0);
    });
    try {
      window.dash_clientside.set_props("offset-clicks-lost", {data: lost});
    } catch (e) { /* the store is not drawn */ }
  }

  // The outputs of a callback request, as "id.property" (Dash joins them with "...").
  function outputs(request) {
    var output = request && typeof request.output === "string" ? request.output : "";
    return output.replace(/^\.\./, "").replace(/\.\.$/, "").split("...");
  }

  // After each answered (or failed) update request: an edit request that got no good
  // answer owes the history its graph edits; the next good answer from the client
  // asks the edit callback to record them. Only an answer asks, so nothing is sent
  // while the client is still down. A resync the client answered with an error (a
  // page it refuses as stale, say) is not asked again: it would be at every poll.
  function owe(body, response) {
    var request = null;
    try { request = JSON.parse(body); } catch (e) { return; }
    var edit = outputs(request).indexOf("outline-history.data") >= 0;
    if (response && response.ok) {
      // An edit request that got an answer carried the screen itself.
      if (owed && !edit) { setTimeout(resync, 0); }
      owed = false;
      return;
    }
    var resent = ((request && request.changedPropIds) || []).indexOf("edit-resync.data") >= 0;
    if (edit && !(response && resent)) { owed = true; }
  }

  function resync() {
    // The Annotate page has gone (a Store draws no element: its button tells).
    if (!document.getElementById("grow-button")) { return; }
    try {
      window.dash_clientside.set_props("edit-resync", {data: Date.now()});
    } catch (e) { /* the store is not drawn */ }
  }

  window.fetch = function (input, init) {
    var answer = realFetch(input, init);
    var where = path(input);
    if (/_dash-dependencies$/.test(where)) {
      answer.then(function (response) { return response.clone().json(); })
        .then(function (callbacks) {
          callbacks.forEach(function (callback) {
            if (callback.running && callback.running.runningOff) {
              runningOff[callback.output] = callback.running.runningOff;
            }
          });
        })
        .catch(function () {});
    } else if (/_dash-update-component$/.test(where) && init && typeof init.body === "string") {
      answer = answer.then(function (response) {
        if (!response.ok) { lostClicks(init.body); }
        owe(init.body, response);
        return response;
      }, function (error) {
        owe(init.body, null);
        lostClicks(init.body);
        recover(init.body);
        throw error;
      });
    }
    return answer;
  };
})();

/* A duplicated tab (the browser's Duplicate, or a link opened in a new window) starts
 * with a copy of the first tab's session storage, so with its worklist claim token:
 * opening a case in one moved the other's claim, and the case the other still had
 * open looked free to other readers. Each tab asks the others, on a BroadcastChannel,
 * whether its token is theirs; a tab told "mine" in its first seconds takes a new one
 * (the Store writes it to its own session storage). */
(function () {
  var ID = "worklist-claim-token";
  if (typeof BroadcastChannel === "undefined" || !window.crypto) { return; }
  var channel = new BroadcastChannel("sonotrace-claim-token");
  var born = Date.now();

  function current() {
    try { return JSON.parse(window.sessionStorage.getItem(ID)); } catch (e) { return null; }
  }

  function fresh() {
    var bytes = new Uint8Array(8);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  channel.onmessage = function (event) {
    var data = event.data || {};
    var mine = current();
    if (typeof mine !== "string") { return; }
    if (data.ask === mine) {
      channel.postMessage({taken: mine});
    } else if (data.taken === mine && Date.now() - born < 10000) {
      var next = fresh();
      // A Store not drawn yet (or on another page) reads session storage when it is;
      // one drawn already takes it from set_props, and writes it there itself.
      window.sessionStorage.setItem(ID, JSON.stringify(next));
      try { window.dash_clientside.set_props(ID, {data: next}); } catch (e) { /* not drawn */ }
    }
  };
  var mine = current();
  if (typeof mine === "string") { channel.postMessage({ask: mine}); }
})();

/* A tool picked while a box is segmented reaches the graph's mouse at once. Dash runs
 * annotate.choose_tool only once every callback upstream of it in its graph has
 * answered, and that graph reaches the tool bar from a box's answer: while a box was
 * segmented the radio showed Draw region and a drag still drew a box. The tool's mouse
 * mode and new-shape style (the tool bar's data-tool-modes, which annotate.py writes
 * from what choose_tool sets) go on the plot here; choose_tool sets the same in the
 * figure when it runs. Only while the box's wait line is up (#box-waiting, set by
 * annotate.segment_box as it runs): while the image just opened is segmented, the tool
 * waits for the AI outline on purpose, so that it never replaces a region drawn by
 * hand (the graph's spinner covers the image then). */
(function () {
  var PREFIX = "_dbcprivate_radioitems_tool_input_";  // dbc's ids of the tool radios
  window.addEventListener("change", function (event) {
    var radio = event.target;
    if (!radio || radio.type !== "radio" || !radio.checked || !radio.id ||
        radio.id.indexOf(PREFIX) !== 0 || !radio.closest) { return; }
    var waiting = document.getElementById("box-waiting");
    if (!waiting || !waiting.classList.contains("sonotrace-box-waiting")) { return; }
    var bar = radio.closest("[data-tool-modes]");
    var gd = document.querySelector("#annotation-graph .js-plotly-plot");
    if (!bar || !gd || !gd.layout || !gd.layout.uirevision || !window.Plotly) { return; }
    var modes;
    try { modes = JSON.parse(bar.getAttribute("data-tool-modes")); } catch (e) { return; }
    var mode = modes && modes[radio.id.slice(PREFIX.length)];
    if (!mode || gd.layout.dragmode === mode.dragmode &&
        JSON.stringify(gd.layout.newshape || {}) === JSON.stringify(mode.newshape)) { return; }
    window.Plotly.relayout(gd, {dragmode: mode.dragmode, newshape: mode.newshape});
  }, true);
})();

/* Undo, Redo and Reset to AI pressed as a box is drawn wait until the box is asked for.
 * annotate.edit holds these presses for a box's answer only once the box is in its
 * pending list (annotate.ask_box's answer). Ctrl+Z pressed as the mouse was released
 * could reach the client first, under load: the Undo took back the region drawn before
 * the box, and the box then came on top of what was left. A press made while a box's
 * drag is under way, or after its release and before ask_box has answered, is held
 * here and made again, in order, once it has (or after SETTLE_MS without a request and
 * with no rectangle on the graph: a drag plotly.js did not make a box of). */
(function () {
  var BUTTONS = ["undo-button", "redo-button", "reset-button"];
  var STILL_PX = 3;  // a release this close to the press drew no box
  var SETTLE_MS = 1500;  // after the release, the longest wait for the box's request
  var LONGEST_MS = 20000;  // the longest any press is held (a request never answered)
  var drag = null;  // the box drag under way: where it began
  var released = 0;  // Date.now() of a box's release whose request has not started
  var asking = 0;  // ask_box requests on their way
  var held = [];  // [{id, at}] pressed meanwhile, oldest first
  var replaying = false;
  // Date.now() of a held press made again whose edit answer has not come; 0: none. The
  // presses are made again one edit answer apart: two clicks in one edit call are one
  // (edit takes a click as a press, not its count), and Ctrl+Z twice undid one step.
  var replayed = 0;

  // A rectangle on the graph is a box plotly.js drew whose event, and so ask_box's
  // request, is still to come (ask_box's answer takes it off): a late event, under
  // load, is waited for past SETTLE_MS, up to LONGEST_MS.
  function boxShown() {
    var gd = document.querySelector("#annotation-graph .js-plotly-plot");
    var shapes = gd && gd.layout && gd.layout.shapes;
    return Array.isArray(shapes) && shapes.some(function (s) { return s && s.type === "rect"; });
  }

  function waiting() {
    if (drag !== null || asking > 0) { return true; }
    if (replayed && Date.now() - replayed < LONGEST_MS) { return true; }
    var since = released ? Date.now() - released : LONGEST_MS;
    return since < SETTLE_MS || (since < LONGEST_MS && boxShown());
  }

  function flush() {
    var now = Date.now();
    if (waiting() && !(held.length && now - held[0].at >= LONGEST_MS)) { return; }
    released = 0;
    replayed = 0;
    while (held.length) {
      var press = held.shift();
      var button = document.getElementById(press.id);
      if (!button || button.disabled) { continue; }  // gone with its page, or of no use now
      replaying = true;
      try {
        button.click();
      } finally {
        replaying = false;
      }
      replayed = Date.now();
      setTimeout(flush, LONGEST_MS);
      return;
    }
  }

  window.addEventListener("mousedown", function (event) {
    var graph = document.getElementById("annotation-graph");
    var target = event.target;
    if (event.button !== 0 || !graph || !graph.contains(target) || !target.closest ||
        !target.closest(".draglayer")) {
      return;
    }
    var gd = graph.querySelector(".js-plotly-plot") || graph;
    if (gd._fullLayout && gd._fullLayout.dragmode === "drawrect") {
      drag = {x: event.clientX, y: event.clientY};
    }
  }, true);

  window.addEventListener("mouseup", function (event) {
    var began = drag;
    drag = null;
    if (began && (Math.abs(event.clientX - began.x) > STILL_PX ||
                  Math.abs(event.clientY - began.y) > STILL_PX)) {
      released = Date.now();
    }
    setTimeout(flush, released ? SETTLE_MS : 0);
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("button") : null;
    if (replaying || !button || BUTTONS.indexOf(button.id) < 0 || !waiting()) { return; }
    event.preventDefault();
    event.stopImmediatePropagation();
    held.push({id: button.id, at: Date.now()});
    setTimeout(flush, LONGEST_MS);
  }, true);

  function settled() {
    setTimeout(function () { replayed = 0; flush(); }, 50);
  }

  var priorFetch = window.fetch.bind(window);
  window.fetch = function (input, init) {
    var answer = priorFetch(input, init);
    var url = typeof input === "string" ? input : (input && input.url) || "";
    var output = "";
    if (/_dash-update-component$/.test(url.split("?")[0]) && init &&
        typeof init.body === "string") {
      try { output = String(JSON.parse(init.body).output || ""); } catch (e) { output = ""; }
    }
    if (output.indexOf("outline-history.data") >= 0 && replayed) {
      // edit's answer: the next held press, if any, goes in a call of its own.
      answer.then(function (response) { return response.clone().text(); })
        .then(settled, settled);
      return answer;
    }
    // ask_box's request: the one callback whose outputs hold the box request.
    if (output.indexOf("box-request.data") < 0) { return answer; }
    asking += 1;
    released = 0;
    function done() {
      // After the renderer has put the answer's pending list in its store.
      setTimeout(function () { asking = Math.max(0, asking - 1); flush(); }, 50);
    }
    answer.then(function (response) { return response.clone().text(); })
      .then(done, done);
    return answer;
  };
})();
