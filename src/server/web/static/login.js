/*
 * login.js - the sign-in form: POST the key to /ui/login, which answers with
 * an HttpOnly cookie (the page never keeps the key itself), then go back
 * to the page that asked for it, else to the model list.
 */
'use strict';

(() => {
  const form = document.getElementById('login');
  const input = document.getElementById('key');
  const error = document.getElementById('login-error');
  const button = form.querySelector('button');

  /* Back to the page that asked for a key; only a page of this hub, so
   * that a crafted link cannot send the person elsewhere after signing in.
   * The URL parser decides, as the browser will when it follows it: it
   * drops tabs and newlines and reads '\\' as '/', which is how
   * "/\t/host" and "/\\host" name another site. */
  function nextPage() {
    const next = new URLSearchParams(window.location.search).get('next');
    if (!next || next[0] !== '/' || /[\u0000-\u001f\\]/.test(next))
      return '/';
    let url;
    try {
      url = new URL(next, window.location.origin);
    } catch (e) {
      return '/';
    }
    if (url.origin !== window.location.origin) return '/';
    return url.pathname + url.search + url.hash;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    try {
      await chub.api('/ui/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json',
                   Accept: 'application/json' },
        body: JSON.stringify({ key }),
        noLoginRedirect: true,
      });
      window.location.assign(nextPage());
    } catch (e) {
      error.textContent = e.status === 401
          ? 'This hub does not know that key (or it was revoked).'
          : 'Could not sign in: ' + e.message;
      error.hidden = false;
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  input.focus();
})();
