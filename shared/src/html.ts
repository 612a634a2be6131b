/**
 * Text for HTML (element content and quoted attribute values): every character that could end
 * a text run or an attribute, quoted or not, becomes a numeric reference.
 */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`=]/g, (c) => `&#${c.charCodeAt(0)};`);
}
