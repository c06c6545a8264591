//! Queries on `tenants`.

use diesel::prelude::*;

use super::models::TenantRow;
use super::schema::{rules, tenants};
use super::{write, Conn, StoreError};
use crate::domain::tenant::Tenant;

pub fn list(conn: &mut Conn) -> Result<Vec<TenantRow>, StoreError> {
    Ok(tenants::table.order(tenants::id.asc()).select(TenantRow::as_select()).load(conn)?)
}

pub fn get(conn: &mut Conn, id: &str) -> Result<TenantRow, StoreError> {
    tenants::table
        .find(id)
        .select(TenantRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("tenant"))
}

/// Registers a new tenant; an existing id is a conflict.
pub fn create(conn: &mut Conn, tenant: &Tenant, now: i64) -> Result<TenantRow, StoreError> {
    write(conn, |conn| {
        if tenants::table.find(&tenant.id).count().get_result::<i64>(conn)? > 0 {
            return Err(StoreError::Conflict(format!("tenant `{}` already exists; use PATCH to change it", tenant.id)));
        }
        let row = row_of(tenant, now);
        diesel::insert_into(tenants::table).values(&row).execute(conn)?;
        Ok(row)
    })
}

/// Inserts the tenant or updates its names (an event carrying a full tenant object).
pub fn upsert(conn: &mut Conn, tenant: &Tenant, now: i64) -> Result<(), StoreError> {
    let row = row_of(tenant, now);
    each_backend!(conn, c => diesel::insert_into(tenants::table)
        .values(&row)
        .on_conflict(tenants::id)
        .do_update()
        .set((
            tenants::display_name.eq(&row.display_name),
            tenants::microsoft_tenant_id.eq(&row.microsoft_tenant_id),
            tenants::updated_at.eq(row.updated_at),
        ))
        .execute(c))?;
    Ok(())
}

/// Changes a tenant's names.
pub fn update(
    conn: &mut Conn,
    id: &str,
    display_name: Option<&str>,
    microsoft_tenant_id: Option<&str>,
    now: i64,
) -> Result<TenantRow, StoreError> {
    write(conn, |conn| {
        super::lock_for_change(conn, super::Changeable::Tenant, id)?;
        let mut row = get(conn, id)?;
        if let Some(name) = display_name {
            row.display_name = name.to_string();
        }
        if let Some(guid) = microsoft_tenant_id {
            row.microsoft_tenant_id = guid.to_string();
        }
        row.updated_at = now;
        diesel::update(tenants::table.find(id)).set(&row).execute(conn)?;
        Ok(row)
    })
}

/// Deletes a tenant no rule refers to. Its events and deliveries stay in the log.
pub fn delete(conn: &mut Conn, id: &str) -> Result<(), StoreError> {
    write(conn, |conn| {
        get(conn, id)?;
        let used_by: Vec<String> = rules::table.filter(rules::tenant_id.eq(id)).select(rules::id).load(conn)?;
        if !used_by.is_empty() {
            return Err(StoreError::Conflict(format!(
                "tenant `{id}` is used by rule(s) {}; delete those rules or change their tenant first",
                used_by.join(", ")
            )));
        }
        diesel::delete(tenants::table.find(id)).execute(conn)?;
        Ok(())
    })
}

/// The tenants with these ids, in any order.
pub fn find_many(conn: &mut Conn, ids: &[&str]) -> Result<Vec<TenantRow>, StoreError> {
    Ok(tenants::table.filter(super::id_in("id", ids)).select(TenantRow::as_select()).load(conn)?)
}

fn row_of(tenant: &Tenant, now: i64) -> TenantRow {
    TenantRow {
        id: tenant.id.clone(),
        display_name: tenant.display_name.clone(),
        microsoft_tenant_id: tenant.microsoft_tenant_id.clone(),
        created_at: now,
        updated_at: now,
    }
}

impl TenantRow {
    pub fn to_tenant(&self) -> Tenant {
        Tenant {
            id: self.id.clone(),
            display_name: self.display_name.clone(),
            microsoft_tenant_id: self.microsoft_tenant_id.clone(),
        }
    }
}
