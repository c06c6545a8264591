// Tenants: the Microsoft 365 tenants SPScan watches.

import { del, get, patch, post } from './api.js';
import { clear, clearErrors, field, formError, h, safely, saveOrCancel, showError, table, toast, when } from './ui.js';

export function tenantForm(tenant, done) {
  const id = h('input', { type: 'text', name: 'id', required: true, value: tenant ? tenant.id : '', disabled: Boolean(tenant) });
  const name = h('input', { type: 'text', name: 'display_name', required: true, value: tenant ? tenant.display_name : '' });
  const guid = h('input', { type: 'text', name: 'microsoft_tenant_id', required: true, placeholder: 'b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd',
    value: tenant ? tenant.microsoft_tenant_id : '' });
  const form = h('form.card', { 'aria-label': tenant ? 'Edit tenant' : 'Add tenant' },
    h('h2', {}, tenant ? `Edit ${tenant.display_name}` : 'Add tenant'),
    field('Tenant ID', id, 'SPScan’s id for the tenant; it cannot change later.'),
    field('Display name', name),
    field('Microsoft tenant ID', guid, 'The Entra tenant GUID.'),
    formError(),
    saveOrCancel(done));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    try {
      const body = { display_name: name.value, microsoft_tenant_id: guid.value };
      done(tenant ? await patch(`/tenants/${encodeURIComponent(tenant.id)}`, body) : await post('/tenants', { id: id.value, ...body }));
    } catch (error) {
      showError(form, error);
    }
  });
  return form;
}

/** The Office 365 audit records that arrived from a tenant: when the last one did, and the last 24 h by outcome. */
function auditCell(audit) {
  const feed = feedLine(audit);
  if (!audit || !audit.last_record_at) return h('div', {}, h('span.muted', { dataset: { audit: 'none' } }, 'none yet'), feed);
  const words = { ingested: 'ingested', duplicate: 'duplicate', folded: 'folded', ignored: 'ignored', unknown_tenant: 'before it was registered', invalid: 'invalid' };
  const counts = Object.entries(audit.last_24h).map(([outcome, n]) => `${n} ${words[outcome] || outcome}`).join(', ');
  return h('div', { dataset: { audit: 'some' } }, `last ${when(audit.last_record_at)}`,
    h('div.muted', {}, counts ? `24 h: ${counts}` : 'none in the last 24 h'), feed);
}

/** What the router fetches from the tenant's Management Activity API: content blobs waiting or expired, and a listing that failed. */
function feedLine(audit) {
  if (!audit) return '';
  const { pending = 0, expired = 0, done = 0 } = audit.contents || {};
  const parts = [];
  if (done) parts.push(`${done} content ${done === 1 ? 'blob' : 'blobs'} fetched`);
  if (pending) parts.push(`${pending} waiting to be fetched`);
  if (expired) parts.push(`${expired} expired unfetched`);
  const line = parts.length ? h('div.muted', { dataset: { feed: expired ? 'expired' : pending ? 'pending' : 'done' } }, parts.join(', ')) : '';
  const error = audit.listing_error ? h('div.error', { dataset: { feed: 'listing-error' } }, `Listing failed ${when(audit.last_listing_at)}: ${audit.listing_error}`) : '';
  return h('div', {}, line, error);
}

export async function render(view) {
  const { items } = await get('/tenants');
  const formSlot = h('div');
  const reload = () => render(view);
  const show = (tenant) => {
    clear(formSlot).append(tenantForm(tenant, (saved) => {
      clear(formSlot);
      if (saved) { toast(`Saved ${saved.display_name}`); reload(); }
    }));
    formSlot.querySelector('input:not([disabled])').focus();
  };
  const rows = items.map((tenant) => h('tr', { dataset: { tenantId: tenant.id } },
    h('td', {}, h('code', {}, tenant.id)),
    h('td', {}, h('a', { href: `#/tenants/${encodeURIComponent(tenant.id)}`, dataset: { tenantPage: tenant.id } }, tenant.display_name)),
    h('td.optional', {}, h('code', {}, tenant.microsoft_tenant_id)),
    h('td', {}, auditCell(tenant.audit)),
    h('td.optional', {}, when(tenant.updated_at)),
    h('td', {}, h('div.actions', {},
      h('button', { type: 'button', on: { click: () => show(tenant) } }, 'Edit'),
      h('button.danger', { type: 'button', on: { click: safely(async () => {
        if (!confirm(`Delete tenant “${tenant.display_name}”? Its events stay in the log.`)) return;
        await del(`/tenants/${encodeURIComponent(tenant.id)}`); toast(`Deleted ${tenant.display_name}`); await reload();
      }) } }, 'Delete')))));
  clear(view).append(
    h('div.bar', {}, h('h1', {}, 'Tenants'),
      h('button.primary', { type: 'button', on: { click: () => show(null) } }, 'Add tenant')),
    formSlot,
    table(['Tenant ID', 'Display name', h('th.optional', {}, 'Microsoft tenant ID'), 'Audit records', h('th.optional', {}, 'Updated'), 'Actions'], rows,
      'No tenants yet. Events that carry a full tenant object register it.'));
}
