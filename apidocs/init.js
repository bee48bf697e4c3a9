// GenPulse /docs: Swagger UI on this server's own /openapi.json (nothing loads from
// elsewhere). "Authorize" takes an API key (gp_…); with persistAuthorization it stays in
// this browser's localStorage until "Logout".
"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    tryItOutEnabled: true,
    displayRequestDuration: true,
    filter: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
