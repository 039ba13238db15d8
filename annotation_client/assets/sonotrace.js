/* SonoTrace annotation client: keyboard shortcuts for undo and redo.
 * Ctrl+Z / Cmd+Z clicks Undo, Ctrl+Y or Ctrl+Shift+Z clicks Redo, unless the focus
 * is in a text field (where the browser's own undo must keep working).
 * Deleting a vertex needs no code here: plotly.js removes a vertex of the selected
 * editable path when it is double-clicked, and reports the new path through
 * relayoutData like any other edit. */
(function () {
  document.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey)) { return; }
    var target = event.target;
    var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || tag === "select" || (target && target.isContentEditable)) {
      return;
    }
    var key = event.key.toLowerCase();
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
