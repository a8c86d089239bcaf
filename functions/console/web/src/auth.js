// Firebase Auth: who is signed in, and as what.
//
// Only firebase/app and firebase/auth are bundled. The popup resolver (Google sign-in) is
// passed to signInWithPopup alone, not to initializeAuth, so an e-mail/password session
// never loads Google's iframe helper script.

import { initializeApp } from "firebase/app";
import {
  GoogleAuthProvider,
  browserLocalPersistence,
  browserPopupRedirectResolver,
  connectAuthEmulator,
  indexedDBLocalPersistence,
  initializeAuth,
  onIdTokenChanged,
  signInWithEmailAndPassword,
  signInWithPopup,
  signOut,
} from "firebase/auth";

const TENANT_ID = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

export function startAuth(config) {
  const app = initializeApp(config.firebase);
  const auth = initializeAuth(app, { persistence: [indexedDBLocalPersistence, browserLocalPersistence] });
  if (config.authEmulator) connectAuthEmulator(auth, config.authEmulator, { disableWarnings: true });
  return auth;
}

export function watchUser(auth, callback) {
  return onIdTokenChanged(auth, callback);
}

/**
 * What the console may show this user, from the ID token's custom claims (the server
 * checks the same claims on every request; this only decides what to offer).
 * @returns {{role: "owner"|"admin"|null, tenant: string|null}}
 */
export async function accessOf(user) {
  const { claims } = await user.getIdTokenResult();
  if (claims.role === "owner") return { role: "owner", tenant: null };
  if (claims.role === "admin" && typeof claims.tenant === "string" && TENANT_ID.test(claims.tenant)) {
    return { role: "admin", tenant: claims.tenant };
  }
  return { role: null, tenant: null };
}

export function signInWithPassword(auth, email, password) {
  return signInWithEmailAndPassword(auth, email, password);
}

export function signInWithGoogle(auth) {
  return signInWithPopup(auth, new GoogleAuthProvider(), browserPopupRedirectResolver);
}

export function signOutUser(auth) {
  return signOut(auth);
}

const MESSAGES = {
  "auth/invalid-credential": "Wrong e-mail address or password.",
  "auth/invalid-login-credentials": "Wrong e-mail address or password.",
  "auth/wrong-password": "Wrong e-mail address or password.",
  "auth/user-not-found": "Wrong e-mail address or password.",
  "auth/invalid-email": "That is not an e-mail address.",
  "auth/missing-password": "Enter the password.",
  "auth/user-disabled": "This account is disabled.",
  "auth/too-many-requests": "Too many attempts: wait a moment and try again.",
  "auth/network-request-failed": "The sign-in service cannot be reached.",
  "auth/popup-closed-by-user": "The sign-in window was closed before signing in.",
  "auth/cancelled-popup-request": "The sign-in window was closed before signing in.",
  "auth/popup-blocked": "The browser blocked the sign-in window: allow pop-ups for this page.",
  "auth/operation-not-allowed": "This way of signing in is not enabled.",
  "console/google-unavailable": "Google sign-in could not start here (its sign-in window could not be prepared). Sign in with e-mail and password instead.",
};

/** A sentence for a Firebase Auth error, and the form field it belongs to (if one). */
export function describeAuthError(error) {
  const code = error && error.code;
  const message = MESSAGES[code] || `Sign-in failed${code ? ` (${code})` : ""}.`;
  const field = code === "auth/invalid-email" ? "email" : code === "auth/missing-password" ? "password" : null;
  return { message, field };
}
