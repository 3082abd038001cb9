/* The page's own address: a page rendered in answer to a refused form (at the form's action address)
   names the address it shows in data-canonical-url; the address bar is set to it, without a reload. */
(function () {
  "use strict";
  var url = document.body && document.body.getAttribute("data-canonical-url");
  if (url && window.history && window.history.replaceState && window.location.pathname !== url) {
    window.history.replaceState(null, "", url + window.location.hash);
  }
})();

/* A form with data-confirm asks before it is sent (submitting an RFC, removing evidence). */
document.addEventListener(
  "submit",
  function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  },
  true
);
