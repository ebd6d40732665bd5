import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, type Me } from './api';
import { Fleet } from './fleet';
import { Inbox } from './inbox';
import { linkClick, usePath } from './router';
import { Session } from './session';
import { Sessions } from './sessions';

function SignIn({ message }: { message?: string }) {
  const back = location.pathname.startsWith('/console') ? location.pathname : '/console';
  return (
    <section class="sign-in">
      <h1>Portcullis console</h1>
      {message && <p class="error">{message}</p>}
      <p>Sign in with your company identity provider, as the CLI does.</p>
      <a class="button" href={`/v1/auth/login?redirect=${encodeURIComponent(back)}`}>
        Sign in
      </a>
    </section>
  );
}

export function App() {
  const path = usePath();
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    api<Me>('GET', '/v1/me').then(setMe, (e: unknown) => {
      setMe(null);
      if (!(e instanceof ApiError && e.status === 401)) setError(e instanceof Error ? e.message : String(e));
    });
  }, []);
  if (me === undefined) return <p>Loading…</p>;
  if (me === null) return <SignIn message={error} />;

  const signOut = async () => {
    await api('POST', '/v1/auth/logout').catch(() => undefined);
    setMe(null);
  };
  const rel = path.replace(/^\/console\/?/, '');
  let page;
  if (rel === '' || rel === 'inbox') page = <Inbox me={me} />;
  else if (rel === 'sessions') page = <Sessions me={me} search={location.search} />;
  else if (rel.startsWith('sessions/')) page = <Session id={decodeURIComponent(rel.slice('sessions/'.length))} />;
  else if (rel === 'fleet') page = <Fleet me={me} />;
  else
    page = (
      <section class="not-found">
        <h1>Page not found</h1>
        <p>
          There is no page here. <a href="/console">Go to the inbox</a>.
        </p>
      </section>
    );
  const tab = (href: string, label: string, active: boolean) => (
    <a href={href} class={active ? 'active' : ''}>
      {label}
    </a>
  );
  return (
    <div onClick={linkClick}>
      <header>
        <strong class="brand">Portcullis</strong>
        <nav>
          {tab('/console', 'Inbox', rel === '' || rel === 'inbox')}
          {tab('/console/sessions', 'Sessions', rel.startsWith('sessions'))}
          {tab('/console/fleet', 'Fleet & config', rel === 'fleet')}
        </nav>
        <span class="who" data-subject={me.subject}>
          {me.displayName ?? me.subject} ({me.roles.join(', ') || 'no roles'})
        </span>
        <button class="sign-out" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>{page}</main>
    </div>
  );
}
