/**
 * HTML that escapes by default: `html\`...\`` escapes every interpolated value unless it
 * is itself an `Html` fragment (made by `html` or, for text known to be markup, `raw`).
 * Arrays are joined, null/undefined/false render nothing, numbers print as text.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function esc(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ESC[c]!);
}

export type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(v: Value): string {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === null || v === undefined || v === false) return '';
  return esc(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Markup we wrote ourselves (a constant style sheet or script); never data. */
export function raw(text: string): Html {
  return new Html(text);
}
