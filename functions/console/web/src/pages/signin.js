// Sign-in: e-mail and password, or Google (Firebase Auth; locally its emulator).

import { ApiError } from "../api.js";
import { describeAuthError, signInWithGoogle, signInWithPassword } from "../auth.js";
import { h } from "../dom.js";
import { clearErrors, field, form, showError } from "../ui/forms.js";

export function renderSignIn({ main, auth, message }) {
  document.title = "Sign in · Coditect licenses";
  const signInForm = form({
    class: "card",
    "data-testid": "sign-in-form",
    "aria-labelledby": "sign-in-title",
    onSubmit: () => passwordSignIn(),
  },
  field({ label: "E-mail address", name: "email", type: "email", testid: "sign-in-email",
    attrs: { autocomplete: "username", required: true } }),
  field({ label: "Password", name: "password", type: "password", testid: "sign-in-password",
    attrs: { autocomplete: "current-password", required: true } }),
  h("div", { class: "actions" },
    h("button", { type: "submit", class: "button primary", "data-testid": "sign-in-submit" }, "Sign in")));

  const google = h("button", { type: "button", class: "button", "data-testid": "sign-in-google" }, "Sign in with Google");
  google.addEventListener("click", () => run(async () => {
    try {
      await signInWithGoogle(auth);
    } catch (error) {
      // Google's popup needs its helper script (apis.google.com) and frame: without them
      // (a Content-Security-Policy, a blocker, no network) Firebase says only "internal-error".
      if (error?.code === "auth/internal-error" || error?.code === "auth/network-request-failed") {
        throw Object.assign(new Error(), { code: "console/google-unavailable" });
      }
      throw error;
    }
  }));

  async function passwordSignIn() {
    const email = signInForm.querySelector("[name=email]").value.trim();
    const password = signInForm.querySelector("[name=password]").value;
    await run(() => signInWithPassword(auth, email, password));
  }

  // Success needs nothing here: the auth state listener draws the console.
  async function run(signIn) {
    clearErrors(signInForm);
    const buttons = [...main.querySelectorAll("button")];
    for (const button of buttons) button.disabled = true;
    try {
      await signIn();
    } catch (error) {
      const { message: text, field: name } = describeAuthError(error);
      showError(signInForm, name ? fakeFieldError(name, text) : new Error(text));
    } finally {
      for (const button of buttons) if (button.isConnected) button.disabled = false;
    }
  }

  main.replaceChildren(
    h("h1", { id: "sign-in-title", tabindex: -1 }, "Sign in to the admin console"),
    message ? h("p", { class: "notice notice-warning", role: "status", "data-testid": "notice" }, message) : null,
    signInForm,
    h("div", { class: "card alt-sign-in" }, h("p", null, "Or, with a Google account:"), google));
}

/** An error shaped like the API's 400, so showError puts it next to the field. */
function fakeFieldError(name, message) {
  return new ApiError(400, { error: { code: "INVALID_REQUEST", message, field: name } });
}
