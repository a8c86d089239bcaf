// A signed-in user without an administrator's role: nothing to administer here.
//
// (The seats this user holds would belong here, but no route lists a user's own sessions:
// see README.md, "What the backend provides".)

import { h } from "../dom.js";

export function renderNothing({ main, user, signOut }) {
  document.title = "Nothing to administer · Coditect licenses";
  const button = h("button", { type: "button", class: "button", "data-testid": "sign-out" }, "Sign out");
  button.addEventListener("click", signOut);
  main.replaceChildren(h("section", { class: "card", "data-testid": "nothing-to-administer" },
    h("h1", { tabindex: -1 }, "Nothing to administer"),
    h("p", null, "You are signed in as ", h("strong", null, user.email || user.uid),
      ", an account without an administrator's role: there is nothing for you to administer here."),
    h("p", null, "If you should administer your organisation's licenses, ask your vendor or your administrator to give this account that role, then sign in again."),
    h("div", { class: "actions" }, button)));
}
