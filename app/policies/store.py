"""Routing policies in Postgres: checked against the registry before anything is written."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.tables import RoutingPolicyRow, routing_policies
from app.errors import Conflict, InvalidInput, NotFound
from app.jobs.schemas import MAX_CHAIN
from app.policies.rules import Policy, by_priority
from app.policies.schemas import PolicyFields, PolicyOut, Rule, RuleRoute
from app.registry.service import Registry
from app.registry.snapshot import TimedSnapshot

PolicyCache = TimedSnapshot[list[Policy]]


def _checked_route(route: RuleRoute, registry: Registry, where: str) -> RuleRoute:
    """The route with every model name replaced by the registry's id for it, so that an
    alias and its id count as one model and jobs get the ids the registry keeps."""

    def canonical(name: str, param: str) -> str:
        return registry.model(name, param=param).id

    models = [canonical(m, f"{where}.models[{i}]") for i, m in enumerate(route.models)]
    fallbacks = [canonical(m, f"{where}.fallbacks[{i}]") for i, m in enumerate(route.fallbacks)]
    weights: dict[str, float] | None = None
    if route.weights is not None:
        weights = {}
        for name, weight in route.weights.items():
            model = canonical(name, f"{where}.weights.{name}")
            if model not in models:
                raise InvalidInput(
                    f"weights may only split traffic over the rule's models; {name!r} is not "
                    "one of them",
                    code="invalid_weights",
                    param=f"{where}.weights.{name}",
                )
            weights[model] = weights.get(model, 0.0) + weight
    chain = dict.fromkeys(models + fallbacks)
    if len(chain) > MAX_CHAIN:
        raise InvalidInput(
            f"a route may name at most {MAX_CHAIN} distinct models (models and fallbacks)",
            code="chain_too_long",
            param=f"{where}.fallbacks",
        )
    return route.model_copy(update={"models": models, "fallbacks": fallbacks, "weights": weights})


def check_rules(fields: PolicyFields, registry: Registry) -> list[Rule]:
    """The policy's rules, checked against the registry and with model names made ids."""
    return [
        rule.model_copy(update={"route": _checked_route(rule.route, registry, f"rules[{i}].route")})
        for i, rule in enumerate(fields.rules)
    ]


def _stored(rules: list[Rule]) -> list[dict[str, object]]:
    return [
        rule.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for rule in rules
    ]


def policy_out(row: RoutingPolicyRow) -> PolicyOut:
    return PolicyOut(
        id=row.name,
        description=row.description,
        priority=row.priority,
        enabled=row.enabled,
        rules=[Rule.model_validate(r) for r in row.rules],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get_policy(session: Session, name: str) -> RoutingPolicyRow:
    row = session.get(RoutingPolicyRow, name)
    if row is None:
        raise NotFound(f"no routing policy {name!r}", code="policy_not_found")
    return row


def list_policies(session: Session) -> list[RoutingPolicyRow]:
    return list(
        session.scalars(
            select(RoutingPolicyRow).order_by(
                RoutingPolicyRow.priority.desc(), RoutingPolicyRow.name
            )
        )
    )


def create_policy(
    session: Session, name: str, fields: PolicyFields, registry: Registry
) -> RoutingPolicyRow:
    rules = check_rules(fields, registry)
    if session.get(RoutingPolicyRow, name) is not None:
        raise _exists(name)
    row = RoutingPolicyRow(
        name=name,
        description=fields.description,
        priority=fields.priority,
        enabled=fields.enabled,
        rules=_stored(rules),
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # created by someone else since the check above
        raise _exists(name) from None
    session.refresh(row)
    return row


def replace_policy(
    session: Session, name: str, fields: PolicyFields, registry: Registry
) -> tuple[RoutingPolicyRow, bool]:
    """Replace the policy called ``name`` whole, or create it; True if it was created."""
    rules = check_rules(fields, registry)
    values = {
        "description": fields.description,
        "priority": fields.priority,
        "enabled": fields.enabled,
        "rules": _stored(rules),
    }
    stmt = insert(routing_policies).values(name=name, **values)
    inserted: bool = session.execute(
        stmt.on_conflict_do_update(
            index_elements=[routing_policies.c.name], set_={**values, "updated_at": func.now()}
        ).returning(literal_column("(xmax = 0)"))  # Postgres: true if the row is new
    ).scalar_one()
    row = get_policy(session, name)
    session.refresh(row)
    return row, bool(inserted)


def delete_policy(session: Session, name: str) -> None:
    session.delete(get_policy(session, name))
    session.flush()


def insert_missing(session: Session, policies: Sequence[tuple[str, PolicyFields]]) -> list[str]:
    """Insert the policies not already present (operators' edits survive); the names added."""
    added = []
    for name, fields in policies:
        values = {
            "name": name,
            "description": fields.description,
            "priority": fields.priority,
            "enabled": fields.enabled,
            "rules": _stored(list(fields.rules)),
        }
        inserted = session.execute(
            insert(routing_policies)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[routing_policies.c.name])
            .returning(routing_policies.c.name)
        ).first()
        if inserted is not None:
            added.append(name)
    return added


def load_policies(session: Session) -> list[Policy]:
    """Every policy (enabled or not: a job naming a disabled one is told so), by priority."""
    return by_priority(
        Policy(
            name=row.name,
            priority=row.priority,
            enabled=row.enabled,
            rules=tuple(Rule.model_validate(r) for r in row.rules),
        )
        for row in list_policies(session)
    )


def _exists(name: str) -> Conflict:
    return Conflict(
        f"a routing policy called {name!r} exists; PUT /v1/policies/{name} replaces it",
        code="policy_exists",
        param="name",
    )
