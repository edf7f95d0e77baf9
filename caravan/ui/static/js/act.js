// The one way a control runs a write: optionally after a confirmation dialog, with the
// control disabled while the call is in flight, and the API's error sentence shown in
// the page's error area instead of thrown.

import { clear, confirmDialog, errorBox } from "./dom.js";

// actor(errors) → act(what, {confirm, busy}): resolves to what `what()` resolved to, or
// to undefined when the user cancelled or the call failed (the error is then on the page).
// `confirm` is [title, text, confirm label]; `busy` the control to disable meanwhile.
export function actor(errors) {
  return async function act(what, { confirm, busy } = {}) {
    if (confirm && !(await confirmDialog(...confirm))) return undefined;
    clear(errors);
    const wasDisabled = busy ? busy.disabled : false;
    if (busy) busy.disabled = true;
    try {
      return await what();
    } catch (error) {
      if (error && error.name !== "AbortError") clear(errors, errorBox(error));
      return undefined;
    } finally {
      if (busy) busy.disabled = wasDisabled;
    }
  };
}
