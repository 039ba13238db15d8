// Offline OpenAPI renderer for the SonoTrace model server (no CDN, no framework).
// Builds the DOM with createElement/textContent only: nothing from the document or from a
// response is ever parsed as HTML.
"use strict";

(function () {
  const SPEC_URL = "/openapi.json";
  let spec = null;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // `code` spans in descriptions, everything else as plain text.
  function richText(text) {
    const out = [];
    String(text || "").split(/(`[^`]*`)/).forEach((part) => {
      if (part.startsWith("`") && part.endsWith("`") && part.length > 1) {
        out.push(el("code", {}, part.slice(1, -1)));
      } else if (part) {
        out.push(part);
      }
    });
    return out;
  }

  function resolve(ref) {
    if (!ref.startsWith("#/")) return {};
    return ref.slice(2).split("/").reduce((node, key) => (node || {})[key], spec) || {};
  }

  function refName(ref) {
    return ref.split("/").pop();
  }

  // A compact, readable rendering of a JSON schema (refs expanded once, cycles cut).
  function schemaText(schema, indent = "", seen = new Set()) {
    if (!schema) return "any";
    if (schema.$ref) {
      const name = refName(schema.$ref);
      if (seen.has(name)) return name + " (see above)";
      const next = new Set(seen);
      next.add(name);
      return name + " " + schemaText(resolve(schema.$ref), indent, next);
    }
    if (schema.allOf) {
      return schema.allOf.map((s) => schemaText(s, indent, seen)).join(" & ");
    }
    const nullable = schema.nullable ? " | null" : "";
    if (schema.type === "object" || schema.properties) {
      const props = schema.properties || {};
      const required = new Set(schema.required || []);
      const inner = indent + "  ";
      const lines = Object.entries(props).map(([name, sub]) => {
        const mark = required.has(name) ? "" : "?";
        const desc = sub.description ? "  // " + sub.description : "";
        return inner + name + mark + ": " + schemaText(sub, inner, seen) + desc;
      });
      if (schema.additionalProperties) {
        lines.push(inner + "[key]: " + schemaText(schema.additionalProperties, inner, seen));
      }
      if (!lines.length) return "object" + nullable;
      return "{\n" + lines.join("\n") + "\n" + indent + "}" + nullable;
    }
    if (schema.type === "array") {
      return schemaText(schema.items, indent, seen) + "[]" + nullable;
    }
    let text = schema.type || "any";
    if (schema.format) text += " <" + schema.format + ">";
    if (schema.enum) text += " (" + schema.enum.join(" | ") + ")";
    const bounds = [];
    if (schema.minimum !== undefined) bounds.push(">= " + schema.minimum);
    if (schema.maximum !== undefined) bounds.push("<= " + schema.maximum);
    if (schema.default !== undefined) bounds.push("default " + schema.default);
    if (bounds.length) text += " [" + bounds.join(", ") + "]";
    return text + nullable;
  }

  function statusClass(code) {
    return "status s" + String(code)[0];
  }

  function parametersTable(params) {
    if (!params || !params.length) return null;
    return [
      el("h2", {}, "Parameters"),
      el("table", {},
        el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"),
          el("th", {}, "description")),
        params.map((p) => el("tr", {},
          el("td", {}, el("code", {}, p.name), p.required ? " *" : ""),
          el("td", {}, p.in),
          el("td", {}, schemaText(p.schema)),
          el("td", {}, richText(p.description))))),
    ];
  }

  function requestBodySection(body) {
    if (!body) return null;
    const content = body.content || {};
    return [
      el("h2", {}, "Request body"),
      el("p", {}, richText(body.description)),
      Object.entries(content).map(([type, media]) => el("div", {},
        el("code", {}, type),
        el("div", { class: "schema", tabindex: "0" }, schemaText(media.schema)))),
    ];
  }

  function responsesSection(responses) {
    return [
      el("h2", {}, "Responses"),
      el("table", {},
        el("tr", {}, el("th", {}, "status"), el("th", {}, "description"), el("th", {}, "body")),
        Object.entries(responses || {}).map(([code, response]) => {
          const resolved = response.$ref ? resolve(response.$ref) : response;
          const bodies = Object.entries(resolved.content || {}).map(([type, media]) =>
            el("div", {}, el("code", {}, type),
              el("div", { class: "schema", tabindex: "0" }, schemaText(media.schema))));
          return el("tr", {},
            el("td", { class: statusClass(code) }, code),
            el("td", {}, richText(resolved.description)),
            el("td", {}, bodies));
        })),
    ];
  }

  // "Try it": query parameters as text fields, multipart file fields as file inputs.
  function tryItForm(path, method, op) {
    const params = op.parameters || [];
    const multipart = ((op.requestBody || {}).content || {})["multipart/form-data"];
    const fileFields = multipart ? Object.entries(multipart.schema.properties || {}) : [];
    const okContent = Object.keys(((op.responses || {})["200"] || {}).content || {});
    const result = el("div", { class: "result" });
    const inputs = {};
    // Each field's label names it (for=), so a screen reader says what it is for; ids
    // are per operation, since every form has an "image" field.
    const fieldId = (name) => ("try-" + method + path + "-" + name).replace(/[^A-Za-z0-9-]+/g, "-");
    const form = el("form", { class: "try" },
      el("strong", {}, "Try it"),
      params.map((p) => {
        inputs[p.name] = el("input", { type: "text", name: p.name, id: fieldId(p.name),
          placeholder: (p.schema && (p.schema.example || p.schema.default)) || "" });
        return [el("label", { for: fieldId(p.name) }, p.name), inputs[p.name]];
      }),
      fileFields.map(([name, schema]) => {
        inputs["file:" + name] = el("input", { type: "file", name, id: fieldId(name) });
        return [el("label", { for: fieldId(name) }, name +
          ((multipart.schema.required || []).includes(name) ? " (required)" : " (optional)")),
          inputs["file:" + name],
          el("div", { class: "summary" }, richText(schema.description))];
      }),
      okContent.length > 1 ? [el("label", { for: fieldId("accept") }, "Accept"),
        inputs.accept = el("select", { id: fieldId("accept") },
          okContent.map((t) => el("option", { value: t }, t)))]
        : null,
      el("button", { type: "submit" }, "Send"),
      result);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const url = new URL(path, window.location.origin);
      params.forEach((p) => {
        const value = inputs[p.name].value.trim();
        if (value) url.searchParams.set(p.name, value);
      });
      const init = { method: method.toUpperCase(), headers: {} };
      if (inputs.accept) init.headers.Accept = inputs.accept.value;
      if (fileFields.length) {
        const data = new FormData();
        fileFields.forEach(([name]) => {
          const file = inputs["file:" + name].files[0];
          if (file) data.append(name, file, file.name);
        });
        init.body = data;
      }
      result.replaceChildren(el("p", {}, "Sending…"));
      const start = performance.now();
      try {
        const response = await fetch(url, init);
        const ms = (performance.now() - start).toFixed(0);
        const type = response.headers.get("content-type") || "";
        const head = el("p", {}, el("span", { class: statusClass(response.status) },
          String(response.status)), " ", type, " · ", ms, " ms");
        if (type.startsWith("image/")) {
          const blob = await response.blob();
          result.replaceChildren(head, el("img", { src: URL.createObjectURL(blob), alt: "response" }));
          return;
        }
        const text = await response.text();
        let shown = text;
        const previews = [];
        try {
          const json = JSON.parse(text);
          if (typeof json.mask === "string") {
            previews.push(el("img", { src: "data:image/png;base64," + json.mask, alt: "mask" }));
          }
          if (typeof json.svg === "string") {
            // The SVG is shown as an image (never inlined), so it cannot run script.
            const blob = new Blob([json.svg], { type: "image/svg+xml" });
            previews.push(el("img", { class: "svgbox", src: URL.createObjectURL(blob), alt: "svg" }));
          }
          shown = JSON.stringify(json, (key, value) =>
            typeof value === "string" && value.length > 300
              ? value.slice(0, 120) + "… (" + value.length + " chars)" : value, 2);
        } catch (_) { /* not JSON: show the text as is */ }
        result.replaceChildren(head, ...previews, el("pre", {}, shown));
      } catch (error) {
        result.replaceChildren(el("p", { class: "error" }, "Request failed: " + error));
      }
    });
    return form;
  }

  function render() {
    document.getElementById("title").textContent = spec.info.title;
    document.getElementById("version").textContent = "v" + spec.info.version;
    document.getElementById("description").replaceChildren(...richText(spec.info.description));
    document.title = spec.info.title + " — API docs";
    const toc = document.getElementById("toc");
    const main = document.getElementById("operations");
    main.replaceChildren();
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const id = op.operationId || method + path;
        toc.append(el("a", { href: "#" + id }, method.toUpperCase() + " " + path));
        main.append(el("details", { class: "op " + method, id },
          el("summary", {}, el("span", { class: "method" }, method), el("span", { class: "path" }, path),
            el("span", { class: "summary" }, op.summary || "")),
          el("div", { class: "body" },
            op.description ? el("p", {}, richText(op.description)) : null,
            parametersTable(op.parameters),
            requestBodySection(op.requestBody),
            responsesSection(op.responses),
            path === "/openapi.json" || path === "/docs" ? null : tryItForm(path, method, op))));
      }
    }
    const schemas = (spec.components || {}).schemas || {};
    main.append(el("details", { class: "op", id: "schemas" },
      el("summary", {}, el("span", { class: "path" }, "Schemas")),
      el("div", { class: "body" }, Object.entries(schemas).map(([name, schema]) =>
        [el("h2", {}, name), el("div", { class: "schema", tabindex: "0" }, schemaText(schema))]))));
    toc.append(el("a", { href: "#schemas" }, "Schemas"));
    if (window.location.hash) {
      const target = document.getElementById(window.location.hash.slice(1));
      if (target && target.tagName === "DETAILS") target.open = true;
    }
  }

  fetch(SPEC_URL)
    .then((response) => {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    })
    .then((json) => { spec = json; render(); })
    .catch((error) => {
      document.getElementById("operations").replaceChildren(
        el("p", { class: "error" }, "Could not load " + SPEC_URL + ": " + error));
    });
})();
