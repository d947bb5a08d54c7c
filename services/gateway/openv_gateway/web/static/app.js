// The OpenV web app: signs in, then creates, watches, plays, cancels and deletes videos
// through the public REST API. Its configuration (public values only) comes from
// /app/config.json; the access token stays in this tab's sessionStorage.

import { Api } from "./api.js";
import { setUpCreate } from "./create.js";
import { setUpGallery } from "./gallery.js";
import * as session from "./session.js";
import { setUpUsage } from "./usage.js";

const $ = (selector) => document.querySelector(selector);
const announcer = $("#announcer");

function announce(text) {
  // A polite live region: screen readers read each change once the user is idle.
  announcer.textContent = text;
}

function confirmDialog() {
  const dialog = $("#confirm-delete");
  return {
    confirm(prompt) {
      $("#confirm-prompt").textContent = prompt;
      dialog.returnValue = "";
      dialog.showModal();
      return new Promise((resolve) => {
        dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), {
          once: true,
        });
      });
    },
  };
}

async function main() {
  const config = await (await fetch("/app/config.json")).json();
  let signedIn = session.fromRedirect() || session.current();

  const api = new Api(
    () => signedIn && signedIn.token,
    () => showSignIn("Your session has ended; sign in again."),
  );
  const usage = setUpUsage($("#usage"), api);
  const gallery = setUpGallery($("#videos"), { api, announce, usage, dialog: confirmDialog() });
  setUpCreate($("#create-form"), { api, announce, usage, onCreated: gallery.created });

  function showSignIn(message = "") {
    gallery.stopAll();
    session.signOut();
    signedIn = null;
    $("#workspace").hidden = true;
    $("#who").hidden = true;
    $("#sign-in").hidden = false;
    $("#local-form").hidden = !config.local_sign_in;
    const supabase = Boolean(config.supabase_url && config.supabase_anon_key);
    $("#password-form").hidden = !supabase;
    $("#magic-form").hidden = !supabase;
    $("#sign-in-message").textContent =
      message || (config.local_sign_in || supabase ? "" : "Sign-in is not configured on this server.");
  }

  function showWorkspace() {
    $("#sign-in").hidden = true;
    $("#workspace").hidden = false;
    $("#who").hidden = false;
    $("#who-name").textContent = `Signed in as ${signedIn.user}`;
    usage.refresh();
    gallery.load();
    $("#prompt").focus();
    announce(`Signed in as ${signedIn.user}.`);
  }

  async function signIn(action) {
    $("#sign-in-message").textContent = "";
    try {
      signedIn = await action();
      showWorkspace();
    } catch (error) {
      $("#sign-in-message").textContent = error.message;
    }
  }

  $("#local-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(() => session.signInLocal($("#local-user").value.trim()));
  });
  $("#password-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(() => session.signInPassword(config, $("#email").value, $("#password").value));
  });
  $("#magic-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await session.sendMagicLink(config, $("#magic-email").value);
      $("#sign-in-message").textContent = "Check your email for the sign-in link.";
    } catch (error) {
      $("#sign-in-message").textContent = error.message;
    }
  });
  $("#sign-out").addEventListener("click", () => showSignIn());

  if (signedIn) showWorkspace();
  else showSignIn();
  document.body.dataset.ready = "true";
}

main();
